"""Run-vs-run comparison: per case, did p50 / p95 change, by how much, is it real, and is the case still ok?

A latency change counts only when it is larger than the threshold (relative
to the baseline) AND the 99 % interval of the difference excludes zero. The
interval comes from each side's batch-means standard error (`bench.stats`),
which keeps the correlation between consecutive frames and, with repeated
launches, the spread between launches; the strict 99 % level and the
threshold together keep false alarms rare on an unchanged app. The p95 must
move by twice the threshold: a tail percentile varies more from launch to
launch (8 launches of one scenario spread p50 by 10 % and p95 by 20 %,
BENCHMARKS.md). The Mann-Whitney p-value is reported for information only.

A faster number is no comfort when the case broke: a case that was `ok` in
the baseline and is missing, degraded, partial, failed or client-bound now
fails the gate, whatever its latency. A baseline case that was not `ok` itself
is reported, never gated on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from scipy.stats import mannwhitneyu

from bench.errors import UsageError
from bench.stats import MIN_FRAMES, difference_ci
from bench.store import RunData, load_run

Verdict = Literal["better", "worse", "no change", "missing", "not ok", "baseline not ok", "new"]
GATING: frozenset[str] = frozenset({"worse", "missing", "not ok"})  # verdicts that fail `check` and `compare`
METRICS = {"p50": 50, "p95": 95}
THRESHOLD_FACTOR = {"p50": 1.0, "p95": 2.0}  # times the threshold each percentile must move
# launches of one unchanged scenario spread p50 by up to 10 % and p95 by up to 20 % on our 2-core VM (BENCHMARKS.md)
DEFAULT_THRESHOLD = 0.15
BASELINE_FORMAT = "streambench-baseline/2"
OLD_BASELINE_FORMATS = ("streambench-baseline/1",)  # latencies only: every case taken as ok


@dataclass
class CaseSeries:
    """One case of a run as the gate sees it: its grade and its measured latencies in capture order."""

    latency_ms: np.ndarray
    repeats: np.ndarray
    status: str = "ok"
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    baseline: float
    candidate: float
    delta: float
    relative: float
    ci: tuple[float, float]
    p_value: float
    verdict: Verdict


@dataclass
class CaseComparison:
    case: str
    verdict: Verdict
    n_baseline: int = 0
    n_candidate: int = 0
    deltas: dict[str, MetricDelta] = field(default_factory=dict)
    reason: str = ""

    @property
    def gates(self) -> bool:
        return self.verdict in GATING

    def to_dict(self) -> dict:
        return asdict(self)


def measured_latencies(run: RunData) -> dict[str, np.ndarray]:
    """Content latencies of shown frames after warm-up, per case, in capture order."""
    return {case: series.latency_ms for case, series in run_cases(run).items()}


def run_cases(run: RunData) -> dict[str, CaseSeries]:
    """Every case the run finished, with its status and measured latencies (none for a case that measured none)."""
    measured = run.measured("latency_ms")
    cases = {}
    for case in run.summary.get("cases", []):
        latencies, repeats = measured.get(case["case"], (np.empty(0), np.empty(0, int)))
        cases[case["case"]] = CaseSeries(
            latency_ms=latencies,
            repeats=repeats,
            status=case.get("status", "ok"),
            reasons=list(case.get("status_reasons") or ([case["error"]] if case.get("error") else [])),
        )
    return cases


def load_cases(path: str | Path) -> dict[str, CaseSeries]:
    """Cases from a run directory or an exported baseline file."""
    source = Path(path)
    if not source.is_file():
        return run_cases(load_run(source))
    try:
        data = json.loads(source.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{source}: not a baseline file ({exc})") from exc
    if data.get("format") not in (BASELINE_FORMAT, *OLD_BASELINE_FORMATS):
        raise UsageError(f"{source}: not a baseline file (expected format {BASELINE_FORMAT!r})")
    cases = {}
    for case, values in data["cases"].items():
        latencies = np.asarray(values["latency_ms"], float)
        cases[case] = CaseSeries(
            latency_ms=latencies,
            repeats=np.asarray(values.get("repeat") or np.zeros(latencies.size), int),
            status=values.get("status", "ok"),
            reasons=list(values.get("reasons", [])),
        )
    return cases


def compare_cases(
    case: str, baseline: CaseSeries | None, candidate: CaseSeries | None, threshold: float = DEFAULT_THRESHOLD
) -> CaseComparison:
    """The verdict for one case; status problems come first, then the latency change."""
    if baseline is None:
        return CaseComparison(case, "new", 0, len(candidate.latency_ms) if candidate else 0, reason="not in baseline")
    if candidate is None:
        return CaseComparison(case, "missing", len(baseline.latency_ms), 0, reason="not in this run")
    comparison = CaseComparison(case, "no change", len(baseline.latency_ms), len(candidate.latency_ms))
    enough = min(comparison.n_baseline, comparison.n_candidate) >= MIN_FRAMES
    if enough:
        comparison.deltas = _deltas(baseline, candidate, threshold)
    if baseline.status != "ok" or comparison.n_baseline < MIN_FRAMES:
        comparison.verdict = "baseline not ok"
        comparison.reason = _why(baseline, comparison.n_baseline)
    elif candidate.status != "ok" or not enough:
        comparison.verdict = "not ok"
        comparison.reason = _why(candidate, comparison.n_candidate)
    else:
        verdicts = {d.verdict for d in comparison.deltas.values()}
        comparison.verdict = "worse" if "worse" in verdicts else "better" if "better" in verdicts else "no change"
    return comparison


def compare_latencies(
    baseline: dict[str, CaseSeries], candidate: dict[str, CaseSeries], threshold: float = DEFAULT_THRESHOLD
) -> list[CaseComparison]:
    cases = list(candidate) + [c for c in baseline if c not in candidate]
    return [compare_cases(case, baseline.get(case), candidate.get(case), threshold) for case in cases]


def compare_runs(baseline: RunData, candidate: RunData, threshold: float = DEFAULT_THRESHOLD) -> list[CaseComparison]:
    return compare_latencies(run_cases(baseline), run_cases(candidate), threshold)


def parse_threshold(text: str, option: str = "--threshold") -> float:
    """`10%` or `0.1` -> 0.1; anything else is a usage error naming `option`."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError as exc:
        raise UsageError(f"{option} {text!r}: expected a percentage such as 10% or a fraction such as 0.1") from exc
    if not 0 <= value < 10:
        raise UsageError(f"{option} {text!r}: must be between 0% and 1000%")
    return value


def _why(series: CaseSeries, n: int) -> str:
    if series.status != "ok":
        return f"{series.status}: {'; '.join(series.reasons) or 'no reason recorded'}"
    return f"only {n} frames measured (at least {MIN_FRAMES} needed)"


def _deltas(baseline: CaseSeries, candidate: CaseSeries, threshold: float) -> dict[str, MetricDelta]:
    before_values, after_values = baseline.latency_ms, candidate.latency_ms
    p_value = float(mannwhitneyu(after_values, before_values, alternative="two-sided").pvalue)
    deltas = {}
    for name, q in METRICS.items():
        before, after = float(np.percentile(before_values, q)), float(np.percentile(after_values, q))
        delta = after - before
        low, high = difference_ci(
            before_values,
            after_values,
            q,
            level=0.99,
            baseline_launches=baseline.repeats,
            candidate_launches=candidate.repeats,
        )
        relative = delta / before if before else 0.0
        limit = threshold * THRESHOLD_FACTOR[name]
        verdict: Verdict = "no change"
        if relative > limit and low > 0:
            verdict = "worse"
        elif relative < -limit and high < 0:
            verdict = "better"
        deltas[name] = MetricDelta(name, before, after, delta, relative, (low, high), p_value, verdict)
    return deltas
