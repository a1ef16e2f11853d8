"""What a run says, in sentences a newcomer understands: the fastest case, each target against the scenario's
reference, the best value of each swept parameter, the claims, and what went wrong.

Reports lead with these findings and only render them: every number and interval is computed here, from the run
directory alone. Differences of p50 get their interval from `difference_ci`, as the gate's do: it keeps the
correlation between consecutive frames (a per-frame interval would call noise a difference) and, with repeats,
the spread between launches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from bench.claims import ClaimVerdict, evaluate_claims
from bench.compare import run_cases
from bench.scenario import comparable_case
from bench.stats import MIN_FRAMES, difference_ci
from bench.store import RunData

FindingKind = Literal["fastest", "reference", "sweep", "claims", "status", "warning"]
FindingLevel = Literal["info", "warn", "fail"]
CI_LEVEL = 0.95
STATUS_WORDS = {"degraded": "is degraded", "partial": "was only partly measured", "failed": "failed"}
UNFINISHED = {"running": "is still running or was killed", "interrupted": "was interrupted"}


@dataclass(frozen=True)
class Finding:
    """One statement of the report's answer. `details` are its sub-points (one per other case) and `level` tells
    a renderer whether it is news (info), something to look at (warn) or a failure (fail)."""

    kind: FindingKind
    text: str
    level: FindingLevel = "info"
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class SharedText:
    """A note or warning that several cases carry, stated once with the cases it applies to."""

    text: str
    cases: tuple[str, ...]
    every_case: bool


@dataclass(frozen=True)
class Series:
    """One case's latencies in capture order and the launch (repeat) each came from."""

    values: np.ndarray
    launches: np.ndarray

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Difference:
    """p50(candidate) - p50(baseline) in ms with its 95 % interval."""

    delta: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.delta:+.1f} ms [{self.low:+.1f}, {self.high:+.1f}]"

    @property
    def direction(self) -> str:
        """'slower' / 'faster' when the interval excludes 0, else ''."""
        return "slower" if self.low > 0 else "faster" if self.high < 0 else ""


def run_findings(run: RunData, verdicts: list[ClaimVerdict] | None = None) -> list[Finding]:
    """The answer first: rankings, the reference, sweeps, claims, then cases that went wrong and warnings."""
    cases = run.summary.get("cases") or []
    measured = [c for c in cases if _p50(c, "latency_ms") is not None]
    ok = [c for c in measured if c.get("status") == "ok"]
    content = {case: Series(s.latency_ms, s.repeats) for case, s in run_cases(run).items()}
    reference = (run.run.get("scenario") or {}).get("reference")
    matches = _reference_matches(ok, cases, reference)
    findings = _fastest(ok, content, matches)
    findings += _against_reference(ok, content, reference, matches)
    findings += _sweeps(measured, _event_latencies(run), content)
    findings += _claims(evaluate_claims(run) if verdicts is None else verdicts)
    findings += _problems(run.summary, cases)
    return findings


def shared_texts(cases: list[dict[str, Any]], key: str) -> list[SharedText]:
    """Each distinct text of `key` (notes, warnings) once, in first-seen order, with the cases that carry it."""
    carriers: dict[str, list[str]] = {}
    for case in cases:
        for text in case.get(key) or []:
            carriers.setdefault(text, []).append(case.get("case", "?"))
    return [SharedText(text, tuple(names), len(names) == len(cases) > 1) for text, names in carriers.items()]


def _fastest(
    ok: list[dict[str, Any]], content: dict[str, Series], matches: dict[str, dict[str, Any] | str]
) -> list[Finding]:
    """Per transform, the case with the lowest content p50 and how much slower each other case is, leaving out
    what the reference finding states (a case against the fastest when the fastest is its reference)."""
    findings = []
    for transform, group in _grouped(ok, lambda c: c.get("transform", "?")):
        best = min(_measurable(group, content), key=lambda c: _p50(c, "latency_ms"))
        is_reference = any(match is best for match in matches.values())
        name = f"{best['case']} (the reference)" if is_reference else best["case"]
        measured = f"content p50 {_with_ci(best, 'latency_ms')}"
        if len(group) == 1:
            p95 = _with_ci(best, "latency_ms", "p95")
            findings.append(Finding("fastest", f"{best['case']}: {measured}, p95 {p95}, {best.get('fps', 0):.1f} fps."))
            continue
        others = [(c, _difference(content.get(best["case"]), content.get(c["case"]))) for c in group if c is not best]
        lines = [
            f"{c['case']}: {_versus(d)} (p50 {_p50(c, 'latency_ms'):.1f} ms)"
            for c, d in others
            if matches.get(c["case"]) is not best
        ]
        if any(d is not None and d.direction for _, d in others):
            head = f"{name} is the fastest {transform} case: {measured}"
        else:
            head = f"No {transform} case is significantly faster than {name}: {measured}"
        if len(lines) == 1:
            findings.append(Finding("fastest", f"{head}; {lines[0]}."))
        else:
            findings.append(Finding("fastest", f"{head}.", details=tuple(lines)))
    return findings


def _reference_matches(
    ok: list[dict[str, Any]], cases: list[dict[str, Any]], reference: str | None
) -> dict[str, dict[str, Any] | str]:
    """Per ok case of another target: the reference case it is compared with (`comparable_case`: same transform,
    same shared params, as `than` claims use), or why there is none."""
    floor = [c for c in cases if c.get("target") == reference]
    others = [(c["case"], c.get("transform", ""), c.get("params") or {}) for c in floor]
    matches: dict[str, dict[str, Any] | str] = {}
    for case in ok:
        if not reference or case.get("target") == reference:
            continue
        try:
            chosen = comparable_case(case.get("transform", ""), case.get("params") or {}, others)
        except ValueError as exc:
            matches[case["case"]] = str(exc)
            continue
        match = next(c for c in floor if c["case"] == chosen)
        matches[case["case"]] = match if match in ok else f"the reference {chosen} is {match.get('status')}"
    return matches


def _against_reference(
    ok: list[dict[str, Any]],
    content: dict[str, Series],
    reference: str | None,
    matches: dict[str, dict[str, Any] | str],
) -> list[Finding]:
    """Every other target's ok cases against their reference case."""
    if not reference:
        return []
    if not any(c.get("target") == reference for c in ok):
        text = f"The reference target {reference} has no ok case: nothing is stated against it."
        return [Finding("reference", text, "warn")]
    findings = []
    for target, group in _grouped([c for c in ok if c["case"] in matches], lambda c: c.get("target", "?")):
        lines = []
        for case in group:
            match = matches[case["case"]]
            if isinstance(match, str):
                lines.append(f"{case['case']}: not compared with the reference: {match}")
            else:
                d = _difference(content.get(match["case"]), content.get(case["case"]))
                lines.append(_reference_sentence(case, match, d))
        if len(lines) == 1:
            findings.append(Finding("reference", f"{lines[0]}."))
        else:
            findings.append(Finding("reference", f"{target} against the reference {reference}:", details=tuple(lines)))
    return findings


def _reference_sentence(case: dict[str, Any], reference: dict[str, Any], d: Difference | None) -> str:
    mine, theirs = _p50(case, "latency_ms"), _p50(reference, "latency_ms")
    ratio = f", ratio {mine / theirs:.2f}" if theirs else ""
    numbers = f"content p50 {mine:.1f} vs {theirs:.1f} ms{ratio}"
    if d is None:
        return f"{case['case']}: too few frames to compare with the reference {reference['case']} ({numbers})"
    if not d.direction:
        return f"{case['case']}: no significant difference from the reference {reference['case']} ({d}; {numbers})"
    return f"{case['case']} is {d} {d.direction} than the reference {reference['case']} ({numbers})"


def _sweeps(measured: list[dict[str, Any]], events: dict[str, Series], content: dict[str, Series]) -> list[Finding]:
    """Per target and swept parameter (other settings fixed): the value with the lowest event-to-display p50,
    else the lowest content p50. Degraded values still show where the curve goes, but win only if nothing ok can."""
    findings = []
    for target, mine in _grouped(measured, lambda c: c.get("target", "?")):
        for param in swept_params(mine):
            swept = [c for c in mine if param in (c.get("params") or {})]
            for fixed, series in _grouped(swept, lambda c, p=param: _others(c, p)):
                if len({c["params"][param] for c in series}) > 1:
                    findings.append(_sweep(target, param, fixed, series, events, content))
    return findings


def _sweep(
    target: str,
    param: str,
    fixed: tuple,
    series: list[dict[str, Any]],
    events: dict[str, Series],
    content: dict[str, Series],
) -> Finding:
    by_event = all(_p50(c, "event_latency_ms") is not None for c in series)
    family, name, values = (
        ("event_latency_ms", "event-to-display", events) if by_event else ("latency_ms", "content", content)
    )
    best = min(_measurable(series, values), key=lambda c: _p50(c, family))
    runner_up = min(_measurable([c for c in series if c is not best], values), key=lambda c: _p50(c, family))
    where = "".join(f", {k}={_fmt(v)}" for k, v in fixed[1:])
    text = (
        f"{target}{where}: {_setting(best, param)} gives the lowest {name} p50 "
        f"({_with_ci(best, family)}, {best.get('fps', 0):.1f} fps)"
    )
    if by_event:
        spread = [_p50(c, "latency_ms") for c in series]
        text += f"; content p50 is {min(spread):.0f}-{max(spread):.0f} ms across the values"
    d = _difference(values.get(best["case"]), values.get(runner_up["case"]))
    text += f"; next best: {_setting(runner_up, param)}, {_versus(d)}."
    return Finding("sweep", text)


def _claims(verdicts: list[ClaimVerdict]) -> list[Finding]:
    if not verdicts:
        return []
    count = {status: sum(v.status == status for v in verdicts) for status in ("pass", "fail", "inconclusive")}
    text = f"Claims: {count['pass']} pass, {count['fail']} fail, {count['inconclusive']} inconclusive."
    failing = [v for v in verdicts if v.status == "fail"]
    if failing:
        text += " Failing: " + "; ".join(f"{v.claim} on {v.case}{_measured(v)}{_why(v)}" for v in failing) + "."
    unsure = tuple(
        f"inconclusive: {v.claim} on {v.case}{_measured(v)}{_why(v) or ': the interval straddles the bound'}"
        for v in verdicts
        if v.status == "inconclusive"
    )
    level: FindingLevel = "fail" if failing else "warn" if unsure else "info"
    return [Finding("claims", text, level, unsure)]


def _problems(summary: dict[str, Any], cases: list[dict[str, Any]]) -> list[Finding]:
    """Cases that are not ok, in plain words, then warnings not already given as a case's reason."""
    findings = []
    run_status = summary.get("status")
    if run_status in UNFINISHED:
        text = f"This run {UNFINISHED[run_status]}: only the {len(cases)} cases it finished are reported."
        findings.append(Finding("status", text, "warn"))
    if not cases:
        findings.append(Finding("status", "No case finished: nothing was measured.", "fail"))
    for case in cases:
        status = case.get("status")
        if status == "ok" or status is None:
            continue
        reasons = list(case.get("status_reasons") or []) or ([case["error"]] if case.get("error") else [])
        words = STATUS_WORDS.get(status, f"has status {status}")
        text = f"{case.get('case', '?')} {words}" + (": " + "; ".join(reasons) if reasons else ".")
        findings.append(Finding("status", text, "fail" if status == "failed" else "warn"))
    reasons = {(c.get("case"), r) for c in cases for r in c.get("status_reasons") or []}
    unexplained = [
        {**c, "warnings": [w for w in c.get("warnings") or [] if (c.get("case"), w) not in reasons]} for c in cases
    ]
    for shared in shared_texts(unexplained, "warnings"):
        who = "all cases" if shared.every_case else ", ".join(shared.cases)
        findings.append(Finding("warning", f"{who}: {shared.text}", "warn"))
    return findings


def _event_latencies(run: RunData) -> dict[str, Series]:
    """Event-to-display latencies after warm-up, per case, in capture order (as `run_cases` has content latency)."""
    return {case: Series(values, launches) for case, (values, launches) in run.measured("event_latency_ms").items()}


def _difference(baseline: Series | None, candidate: Series | None) -> Difference | None:
    if baseline is None or candidate is None or min(len(baseline), len(candidate)) < MIN_FRAMES:
        return None
    delta = float(np.percentile(candidate.values, 50) - np.percentile(baseline.values, 50))
    low, high = difference_ci(
        baseline.values,
        candidate.values,
        50,
        level=CI_LEVEL,
        baseline_launches=baseline.launches,
        candidate_launches=candidate.launches,
    )
    return Difference(delta, low, high)


def _measurable(cases: list[dict[str, Any]], values: dict[str, Series]) -> list[dict[str, Any]]:
    """The cases a winner is picked from: ok ones with enough frames, else any with enough frames, else all.
    A few lucky frames or a degraded case never win while another case can."""
    enough = [c for c in cases if len(values.get(c["case"], ())) >= MIN_FRAMES]
    return [c for c in enough if c.get("status") == "ok"] or enough or cases


def _setting(case: dict[str, Any], param: str) -> str:
    """'stream_every 0.5', with the case's status when it is not ok."""
    status = case.get("status")
    return f"{param} {_fmt(case['params'][param])}" + ("" if status == "ok" else f" ({status})")


def _versus(d: Difference | None) -> str:
    if d is None:
        return "too few frames to compare"
    return f"{d} {d.direction}" if d.direction else f"no significant difference, {d}"


def _others(case: dict[str, Any], param: str) -> tuple:
    """What a swept case holds fixed: its transform and its other parameters."""
    rest = sorted((k, v) for k, v in (case.get("params") or {}).items() if k != param)
    return (case.get("transform"), *rest)


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def swept_params(cases: list[dict[str, Any]]) -> list[str]:
    """Parameters that take more than one value across the cases."""
    seen: dict[str, set] = {}
    for case in cases:
        for key, value in (case.get("params") or {}).items():
            seen.setdefault(key, set()).add(value)
    return [key for key, values in seen.items() if len(values) > 1]


def _grouped(cases: list[dict[str, Any]], key: Any) -> list[tuple[Any, list[dict[str, Any]]]]:
    groups: dict[Any, list[dict[str, Any]]] = {}
    for case in cases:
        groups.setdefault(key(case), []).append(case)
    return list(groups.items())


def _p50(case: dict[str, Any], family: str) -> float | None:
    return (case.get(family) or {}).get("p50")


def _with_ci(case: dict[str, Any], family: str, stat: str = "p50") -> str:
    stats = case.get(family) or {}
    ci = stats.get(f"{stat}_ci")
    return f"{stats[stat]:.1f} ms" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def _measured(verdict: ClaimVerdict) -> str:
    if verdict.value is None:
        return ""
    sign = "+" if verdict.values is not None else ""  # a `than` claim's value is the difference to the other case
    ci = f", 95 % CI [{verdict.ci[0]:{sign}.1f}, {verdict.ci[1]:{sign}.1f}]" if verdict.ci else ""
    if verdict.values is not None:
        return f" ({verdict.value:+.1f} ms vs {verdict.other_case}{ci})"
    return f" (measured {verdict.value:.1f}{ci})"


def _why(verdict: ClaimVerdict) -> str:
    return f": {verdict.reason}" if verdict.reason else ""
