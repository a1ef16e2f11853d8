"""Claims as code: does a run support "p95 < 500 ms", with its confidence interval?

pass: the whole 95 % interval satisfies the claim; fail: the whole interval
violates it; inconclusive: the interval straddles the bound (measure longer).
Rates (fps, lost_ratio) have no interval here and are compared as measured.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bench.stats import bootstrap_ci, difference_ci
from bench.store import RunData

ClaimStatus = Literal["pass", "fail", "inconclusive"]
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
STATS = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}


@dataclass(frozen=True)
class ClaimVerdict:
    claim: str
    case: str
    status: ClaimStatus
    value: float | None
    ci: tuple[float, float] | None
    bound: float | str


def evaluate_claims(run: RunData) -> list[ClaimVerdict]:
    claims = run.run.get("scenario", {}).get("claims", [])
    verdicts: list[ClaimVerdict] = []
    for claim in claims:
        verdicts += _evaluate(run, claim)
    return verdicts


def _evaluate(run: RunData, claim: dict) -> list[ClaimVerdict]:
    text = _describe(claim)
    cases = [c for c in run.summary.get("cases", []) if c["target"] == claim["target"]]
    if not cases:
        bound = claim["value"] if claim.get("value") is not None else claim["than"]
        return [ClaimVerdict(text, claim["target"], "inconclusive", None, None, bound)]
    verdicts = []
    for case in cases:
        if claim.get("than"):
            verdicts.append(_against_target(run, claim, case, text))
            continue
        value, ci = _metric(run, case, claim["metric"])
        verdicts.append(
            ClaimVerdict(
                text,
                case["case"],
                _status(claim["op"], ci or (value, value), claim["value"], value),
                value,
                ci,
                claim["value"],
            )
        )
    return verdicts


def _against_target(run: RunData, claim: dict, case: dict, text: str) -> ClaimVerdict:
    """Compare with the other target's case that has the same transform (first one if several)."""
    others = [c for c in run.summary["cases"] if c["target"] == claim["than"] and c["transform"] == case["transform"]]
    others = others or [c for c in run.summary["cases"] if c["target"] == claim["than"]]
    family, _, stat = claim["metric"].partition(".")
    mine, theirs = (
        _values(run, case["case"], family),
        _values(run, others[0]["case"], family) if others else np.empty(0),
    )
    if stat not in STATS or len(mine) < 2 or len(theirs) < 2:
        return ClaimVerdict(text, case["case"], "inconclusive", None, None, claim["than"])
    delta = float(np.percentile(mine, STATS[stat]) - np.percentile(theirs, STATS[stat]))
    low, high = difference_ci(theirs, mine, STATS[stat], level=0.95)
    return ClaimVerdict(
        text, case["case"], _status(claim["op"], (low, high), 0.0, delta), delta, (low, high), claim["than"]
    )


def _metric(run: RunData, case: dict, metric: str) -> tuple[float | None, tuple[float, float] | None]:
    if metric in ("fps", "lost_ratio"):
        return case.get(metric), None
    family, _, stat = metric.partition(".")
    stats = case.get(family) or {}
    value = stats.get(stat)
    ci = stats.get(f"{stat}_ci")
    if ci is None and stat in STATS:
        values = _values(run, case["case"], family)
        ci = bootstrap_ci(values, STATS[stat], level=0.95) if len(values) > 1 else None
    return value, tuple(ci) if ci else None


def _values(run: RunData, case_id: str, family: str) -> np.ndarray:
    frame = run.case_samples(case_id)
    if not len(frame):
        return np.empty(0)
    if family == "latency_ms":
        frame = frame[frame["status"] == "ok"]
    return frame[family].dropna().to_numpy(float)


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


def _describe(claim: dict) -> str:
    bound = f"{claim['than']}'s" if claim.get("than") else f"{claim['value']:g}"
    text = f"{claim['target']} {claim['metric']} {claim['op']} {bound}"
    return f"{text} ({claim['description']})" if claim.get("description") else text
