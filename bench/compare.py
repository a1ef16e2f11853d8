"""Run-vs-run comparison: per case, did p50 / p95 change, by how much, and is it real?

A change counts only when it is larger than the threshold (relative to the
baseline) AND the 99 % moving-block-bootstrap interval of the difference
excludes zero. The block bootstrap keeps the correlation between consecutive
frames (an iid bootstrap or a plain Mann-Whitney test treats 300 correlated
frames as 300 independent ones and cries wolf); the strict 99 % level and the
threshold together keep false alarms rare on an unchanged app. The p95 must
move by twice the threshold: a tail percentile varies more from run to run
than the bootstrap within one run can see (two runs of one unchanged scenario
differed by 12 % and 15 % at p95, 3 % and 8 % at p50, BENCHMARKS.md). The
Mann-Whitney p-value is reported for information only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from scipy.stats import mannwhitneyu

from bench.errors import UsageError
from bench.stats import difference_ci
from bench.store import RunData, load_run

Verdict = Literal["better", "worse", "no change", "missing"]
METRICS = {"p50": 50, "p95": 95}
THRESHOLD_FACTOR = {"p50": 1.0, "p95": 2.0}  # times the threshold each percentile must move
# launches of one unchanged scenario spread p50 by up to 10 % and p95 by up to 20 % on our 2-core VM (BENCHMARKS.md)
DEFAULT_THRESHOLD = 0.15
BASELINE_FORMAT = "streambench-baseline/1"
MIN_SAMPLES = 10


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

    def to_dict(self) -> dict:
        return asdict(self)


def measured_latencies(run: RunData) -> dict[str, np.ndarray]:
    """Content latencies of shown frames after warm-up, per case, in capture order."""
    frame = run.samples
    if not len(frame):
        return {}
    shown = frame[(~frame["warmup"]) & (frame["status"] == "ok")].sort_values(["case", "repeat", "user", "capture_s"])
    return {case: group["latency_ms"].to_numpy(float) for case, group in shown.groupby("case", sort=False)}


def load_latencies(path: str | Path) -> dict[str, np.ndarray]:
    """Latencies from a run directory or an exported baseline file."""
    source = Path(path)
    if source.is_file():
        try:
            data = json.loads(source.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"{source}: not a baseline file ({exc})") from exc
        if data.get("format") != BASELINE_FORMAT:
            raise UsageError(f"{source}: not a baseline file (expected format {BASELINE_FORMAT!r})")
        return {case: np.asarray(values["latency_ms"], float) for case, values in data["cases"].items()}
    return measured_latencies(load_run(source))


def compare_samples(
    case: str, baseline: np.ndarray, candidate: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> CaseComparison:
    if len(baseline) < MIN_SAMPLES or len(candidate) < MIN_SAMPLES:
        return CaseComparison(case, "missing", len(baseline), len(candidate))
    p_value = float(mannwhitneyu(candidate, baseline, alternative="two-sided").pvalue)
    deltas = {}
    for name, q in METRICS.items():
        before, after = float(np.percentile(baseline, q)), float(np.percentile(candidate, q))
        delta = after - before
        low, high = difference_ci(baseline, candidate, q)
        relative = delta / before if before else 0.0
        limit = threshold * THRESHOLD_FACTOR[name]
        verdict: Verdict = "no change"
        if relative > limit and low > 0:
            verdict = "worse"
        elif relative < -limit and high < 0:
            verdict = "better"
        deltas[name] = MetricDelta(name, before, after, delta, relative, (low, high), p_value, verdict)
    verdicts = {d.verdict for d in deltas.values()}
    overall: Verdict = "worse" if "worse" in verdicts else "better" if "better" in verdicts else "no change"
    return CaseComparison(case, overall, len(baseline), len(candidate), deltas)


def compare_latencies(
    baseline: dict[str, np.ndarray], candidate: dict[str, np.ndarray], threshold: float = DEFAULT_THRESHOLD
) -> list[CaseComparison]:
    cases = list(candidate) + [c for c in baseline if c not in candidate]
    return [
        compare_samples(case, baseline.get(case, np.empty(0)), candidate.get(case, np.empty(0)), threshold)
        for case in cases
    ]


def compare_runs(baseline: RunData, candidate: RunData, threshold: float = DEFAULT_THRESHOLD) -> list[CaseComparison]:
    return compare_latencies(measured_latencies(baseline), measured_latencies(candidate), threshold)


def parse_threshold(text: str, option: str = "--threshold") -> float:
    """`10%` or `0.1` -> 0.1; anything else is a usage error naming `option`."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError as exc:
        raise UsageError(f"{option} {text!r}: expected a percentage such as 10% or a fraction such as 0.1") from exc
    if not 0 <= value < 10:
        raise UsageError(f"{option} {text!r}: must be between 0% and 1000%")
    return value
