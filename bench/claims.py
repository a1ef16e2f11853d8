"""Claims as code: does a run support "p95 < 500 ms", with its confidence interval?

pass: the whole 95 % interval satisfies the claim; fail: the whole interval
violates it, or the case it is about is not `ok` (a crashed, degraded or
client-bound case supports no claim); inconclusive: the interval straddles the
bound (measure longer, or repeat). Rates (fps, lost_ratio) have no interval
here and are compared as measured. A `than` claim compares like with like:
the other target's case with the same transform and swept params.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from bench.scenario import comparable_case
from bench.stats import CI_LEVEL, difference_ci, quantile_ci
from bench.store import RunData

ClaimStatus = Literal["pass", "fail", "inconclusive"]
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
STATS = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}


@dataclass(frozen=True)
class ClaimVerdict:
    claim: str
    case: str
    status: ClaimStatus
    value: float | None  # the metric, or for a `than` claim the difference (this case - the other)
    ci: tuple[float, float] | None
    bound: float | str
    reason: str = ""
    other_case: str | None = None  # the case a `than` claim compared with
    values: tuple[float, float] | None = None  # a `than` claim's two metrics (this case, the other)


def evaluate_claims(run: RunData) -> list[ClaimVerdict]:
    claims = run.run.get("scenario", {}).get("claims", [])
    verdicts: list[ClaimVerdict] = []
    for claim in claims:
        verdicts += _evaluate(run, claim)
    return verdicts


def _evaluate(run: RunData, claim: dict[str, Any]) -> list[ClaimVerdict]:
    text = _describe(claim)
    bound = claim["value"] if claim.get("value") is not None else claim["than"]
    cases = [c for c in run.summary.get("cases", []) if c["target"] == claim["target"]]
    if not cases:
        return [ClaimVerdict(text, claim["target"], "fail", None, None, bound, "no case of this target finished")]
    verdicts = []
    for case in cases:
        verdict = _against_target(run, claim, case, text) if claim.get("than") else _against_value(run, claim, case)
        if case.get("status") != "ok":
            why = "; ".join(case.get("status_reasons") or []) or case.get("error") or "no reason recorded"
            verdict = replace(verdict, status="fail", reason=f"the case is {case.get('status')}: {why}")
        verdicts.append(verdict)
    return verdicts


def _against_value(run: RunData, claim: dict[str, Any], case: dict[str, Any]) -> ClaimVerdict:
    value, ci = _metric(run, case, claim["metric"])
    status = _status(claim["op"], ci or (value, value), claim["value"], value)
    return ClaimVerdict(_describe(claim), case["case"], status, value, ci, claim["value"])


def _against_target(run: RunData, claim: dict[str, Any], case: dict[str, Any], text: str) -> ClaimVerdict:
    """The difference to the other target's comparable case, with a CI that respects correlated frames."""
    cases = run.summary["cases"]
    others = [(c["case"], c["transform"], c.get("params") or {}) for c in cases if c["target"] == claim["than"]]
    try:
        other_id = comparable_case(case["transform"], case.get("params") or {}, others)
    except ValueError as exc:
        return ClaimVerdict(text, case["case"], "fail", None, None, claim["than"], f"{claim['than']}: {exc}")
    other = next(c for c in cases if c["case"] == other_id)
    family, _, stat = claim["metric"].partition(".")
    if other.get("status") != "ok":
        why = "; ".join(other.get("status_reasons") or []) or other.get("error") or ""
        reason = f"the case compared with, {other_id}, is {other.get('status')}: {why}"
        return ClaimVerdict(text, case["case"], "fail", None, None, claim["than"], reason, other_id)
    (mine, mine_launches), (theirs, their_launches) = _values(run, case["case"], family), _values(run, other_id, family)
    if stat not in STATS or len(mine) < 2 or len(theirs) < 2:
        reason = f"{claim['metric']} of two targets is compared at p50 / p90 / p95 / p99 only"
        return ClaimVerdict(text, case["case"], "inconclusive", None, None, claim["than"], reason, other_id)
    q = STATS[stat]
    mine_value, their_value = float(np.percentile(mine, q)), float(np.percentile(theirs, q))
    low, high = difference_ci(theirs, mine, q, CI_LEVEL, their_launches, mine_launches)
    delta = mine_value - their_value
    status = _status(claim["op"], (low, high), 0.0, delta)
    return ClaimVerdict(
        text, case["case"], status, delta, (low, high), claim["than"], "", other_id, (mine_value, their_value)
    )


def _metric(run: RunData, case: dict[str, Any], metric: str) -> tuple[float | None, tuple[float, float] | None]:
    if metric in ("fps", "lost_ratio"):
        return case.get(metric), None
    family, _, stat = metric.partition(".")
    stats = case.get(family) or {}
    value = stats.get(stat)
    ci = stats.get(f"{stat}_ci")
    if ci is None and stat in STATS:
        values, launches = _values(run, case["case"], family)
        if len(values) > 1:
            interval = quantile_ci(values, STATS[stat], launches)
            ci = (interval.low, interval.high)
    return value, tuple(ci) if ci else None


def _values(run: RunData, case_id: str, family: str) -> tuple[np.ndarray, np.ndarray]:
    """A metric's measured values in capture order per launch, and the launch of each."""
    return run.measured(family).get(case_id, (np.empty(0), np.empty(0, int)))


def _status(op: str, ci: tuple[float, float], bound: float, value: float | None) -> ClaimStatus:
    if value is None:
        return "inconclusive"
    holds = OPS[op]
    low, high = ci
    if holds(low, bound) and holds(high, bound):
        return "pass"
    if not holds(low, bound) and not holds(high, bound):
        return "fail"
    return "inconclusive"


def _describe(claim: dict[str, Any]) -> str:
    bound = f"{claim['than']}'s" if claim.get("than") else f"{claim['value']:g}"
    text = f"{claim['target']} {claim['metric']} {claim['op']} {bound}"
    return f"{text} ({claim['description']})" if claim.get("description") else text
