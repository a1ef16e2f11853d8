"""What a run says, in sentences a newcomer understands: the fastest case, each target against the scenario's
reference, the best value of each swept parameter, the claims, and what went wrong.

Reports lead with these findings and only render them: every number and interval is computed here, from the run
directory alone. Differences are medians of block-bootstrapped percentiles (`difference_ci`), because consecutive
frames are correlated and a per-frame interval would call noise a difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from bench.claims import ClaimVerdict, evaluate_claims
from bench.compare import measured_latencies
from bench.stats import difference_ci
from bench.store import RunData

FindingKind = Literal["fastest", "reference", "sweep", "claims", "status", "warning"]
FindingLevel = Literal["info", "warn", "fail"]
CI_LEVEL = 0.95
MIN_FRAMES = 10  # with fewer frames on a side, an interval of a difference means nothing
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
    ok = [c for c in cases if c.get("status") == "ok" and _p50(c, "latency_ms") is not None]
    content = measured_latencies(run)
    findings = _fastest(ok, content)
    findings += _against_reference(ok, content, (run.run.get("scenario") or {}).get("reference"))
    findings += _sweeps(ok, _event_latencies(run), content)
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


def _fastest(ok: list[dict[str, Any]], content: dict[str, np.ndarray]) -> list[Finding]:
    """Per transform, the case with the lowest content p50 and how much slower each other case is."""
    findings = []
    for transform, group in _grouped(ok, lambda c: c.get("transform", "?")):
        best = min(_measurable(group, content), key=lambda c: _p50(c, "latency_ms"))
        measured = f"content p50 {_with_ci(best, 'latency_ms')}"
        if len(group) == 1:
            p95 = _with_ci(best, "latency_ms", "p95")
            findings.append(Finding("fastest", f"{best['case']}: {measured}, p95 {p95}, {best.get('fps', 0):.1f} fps."))
            continue
        others = [(c, _difference(content.get(best["case"]), content.get(c["case"]))) for c in group if c is not best]
        lines = [f"{c['case']}: {_versus(d)} (p50 {_p50(c, 'latency_ms'):.1f} ms)" for c, d in others]
        if any(d is not None and d.direction for _, d in others):
            head = f"{best['case']} is the fastest {transform} case: {measured}"
        else:
            head = f"No {transform} case is significantly faster; {best['case']} has the lowest {measured}"
        if len(lines) == 1:
            findings.append(Finding("fastest", f"{head}; {lines[0]}."))
        else:
            findings.append(Finding("fastest", f"{head}.", details=tuple(lines)))
    return findings


def _against_reference(
    ok: list[dict[str, Any]], content: dict[str, np.ndarray], reference: str | None
) -> list[Finding]:
    """Every other target's cases against the reference target's case with the same transform and shared params."""
    if not reference:
        return []
    floor = [c for c in ok if c.get("target") == reference]
    if not floor:
        text = f"The reference target {reference} has no ok case: nothing is stated against it."
        return [Finding("reference", text, "warn")]
    findings = []
    for target, group in _grouped([c for c in ok if c.get("target") != reference], lambda c: c.get("target", "?")):
        lines = []
        for case in group:
            match = next((f for f in floor if _comparable(case, f)), None)
            if match is not None:
                d = _difference(content.get(match["case"]), content.get(case["case"]))
                lines.append(_reference_sentence(case, match, d))
        if len(lines) == 1:
            findings.append(Finding("reference", f"{lines[0]}."))
        elif lines:
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


def _sweeps(ok: list[dict[str, Any]], events: dict[str, np.ndarray], content: dict[str, np.ndarray]) -> list[Finding]:
    """Per target and swept parameter (other settings fixed): the value with the lowest event-to-display p50,
    else the lowest content p50."""
    findings = []
    for target, mine in _grouped(ok, lambda c: c.get("target", "?")):
        for param in _varying(mine):
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
    events: dict[str, np.ndarray],
    content: dict[str, np.ndarray],
) -> Finding:
    by_event = all(_p50(c, "event_latency_ms") is not None for c in series)
    family, name, values = (
        ("event_latency_ms", "event-to-display", events) if by_event else ("latency_ms", "content", content)
    )
    best = min(_measurable(series, values), key=lambda c: _p50(c, family))
    runner_up = min(_measurable([c for c in series if c is not best], values), key=lambda c: _p50(c, family))
    where = "".join(f", {k}={_fmt(v)}" for k, v in fixed[1:])
    text = (
        f"{target}{where}: {param} {_fmt(best['params'][param])} gives the lowest {name} p50 "
        f"({_with_ci(best, family)}, {best.get('fps', 0):.1f} fps)"
    )
    if by_event:
        spread = [_p50(c, "latency_ms") for c in series]
        text += f"; content p50 is {min(spread):.0f}-{max(spread):.0f} ms across the values"
    d = _difference(values.get(best["case"]), values.get(runner_up["case"]))
    text += f"; next best: {param} {_fmt(runner_up['params'][param])}, {_versus(d)}."
    return Finding("sweep", text)


def _claims(verdicts: list[ClaimVerdict]) -> list[Finding]:
    if not verdicts:
        return []
    count = {status: sum(v.status == status for v in verdicts) for status in ("pass", "fail", "inconclusive")}
    text = f"Claims: {count['pass']} pass, {count['fail']} fail, {count['inconclusive']} inconclusive."
    failing = [v for v in verdicts if v.status == "fail"]
    if failing:
        text += " Failing: " + "; ".join(f"{v.claim} on {v.case}{_measured(v)}" for v in failing) + "."
    unsure = tuple(
        f"inconclusive: {v.claim} on {v.case}{_measured(v)}; the interval straddles the bound, measure longer"
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


def _event_latencies(run: RunData) -> dict[str, np.ndarray]:
    """Event-to-display latencies after warm-up, per case, in capture order (as `measured_latencies` for content)."""
    frame = run.samples
    if not len(frame) or "event_latency_ms" not in frame:
        return {}
    measured = frame[~frame["warmup"]].dropna(subset=["event_latency_ms"])
    measured = measured.sort_values(["case", "repeat", "user", "capture_s"])
    return {case: group["event_latency_ms"].to_numpy(float) for case, group in measured.groupby("case", sort=False)}


def _difference(baseline: np.ndarray | None, candidate: np.ndarray | None) -> Difference | None:
    if baseline is None or candidate is None or min(len(baseline), len(candidate)) < MIN_FRAMES:
        return None
    delta = float(np.percentile(candidate, 50) - np.percentile(baseline, 50))
    low, high = difference_ci(baseline, candidate, 50, level=CI_LEVEL)
    return Difference(delta, low, high)


def _measurable(cases: list[dict[str, Any]], values: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The cases with enough frames to compare (all of them if none has): a few lucky frames never win."""
    return [c for c in cases if len(values.get(c["case"], ())) >= MIN_FRAMES] or cases


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


def _comparable(case: dict[str, Any], reference: dict[str, Any]) -> bool:
    mine, theirs = case.get("params") or {}, reference.get("params") or {}
    shared = set(mine) & set(theirs)
    return case.get("transform") == reference.get("transform") and all(mine[k] == theirs[k] for k in shared)


def _varying(cases: list[dict[str, Any]]) -> list[str]:
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
    ci = f", 95 % CI [{verdict.ci[0]:.1f}, {verdict.ci[1]:.1f}]" if verdict.ci else ""
    return f" (measured {verdict.value:.1f}{ci})"
