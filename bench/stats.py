"""Exact percentiles from raw samples, confidence intervals that survive correlated frames, latency growth.

Statistics never print and never read files: data in, records out.

Why batch means and not a bootstrap: consecutive frames are correlated (one
slow second slows thirty frames; lag-1 autocorrelation 0.15-0.78 in real runs
here). An iid bootstrap then covers the true p50 of AR(1) data with rho 0.78 in
about 60 % of runs instead of 95 %, and a circular / stationary block bootstrap
with an automatic block length (arch's `optimal_block_length`) still only 80-88 %
at n = 300 (BENCHMARKS.md, "Confidence intervals"). What covered >= 90 % there is
the method of batch means applied to the empirical CDF at the estimate: the
fraction of frames at or below the p-th percentile is a mean of a correlated
0/1 series; its standard error comes from the spread of that fraction across
a few contiguous batches (Student t with batches - 1 degrees of freedom), and
the interval p +- t * se in probability is mapped back through the empirical
quantile function. With repeated launches (`repeat = N`), the launches are the
batches too, so the interval also holds the run-to-run variance, as pyperf and
asv report spread over processes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import t as student_t

PERCENTILES = (50, 90, 95, 99)
SE_FLOOR = 0.5  # the standard error never falls below half the iid one: a few batches can agree by chance
BATCHES = 8  # contiguous batches per launch; 10 or 20 batches lost coverage at rho 0.9 (BENCHMARKS.md)
CI_LEVEL = 0.95
MIN_FRAMES = 10  # fewer frames than this say little about a percentile: the gate and the headline refuse to judge


@dataclass(frozen=True)
class QuantileInterval:
    """A percentile with its confidence interval and the standard error behind it (in the data's units)."""

    estimate: float
    low: float
    high: float
    se: float
    df: int
    method: str


@dataclass(frozen=True)
class LatencyStats:
    n: int
    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    max: float
    min: float
    p50_ci: tuple[float, float]
    p95_ci: tuple[float, float]
    ci_method: str

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["p50_ci"] = list(self.p50_ci)
        data["p95_ci"] = list(self.p95_ci)
        return data


def latency_stats(
    values: np.ndarray | list[float], launches: np.ndarray | list[int] | None = None, level: float = CI_LEVEL
) -> LatencyStats | None:
    """Percentiles (linear interpolation) and CIs of p50 and p95; `values` in capture order per launch."""
    data, labels = _finite(values, launches)
    if data.size == 0:
        return None
    p50, p90, p95, p99 = (float(v) for v in np.percentile(data, PERCENTILES))
    median, tail = quantile_ci(data, 50, labels, level), quantile_ci(data, 95, labels, level)
    return LatencyStats(
        n=int(data.size),
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
        mean=float(data.mean()),
        max=float(data.max()),
        min=float(data.min()),
        p50_ci=(median.low, median.high),
        p95_ci=(tail.low, tail.high),
        ci_method=median.method,
    )


def quantile_ci(
    values: np.ndarray | list[float],
    q: float,
    launches: np.ndarray | list[int] | None = None,
    level: float = CI_LEVEL,
) -> QuantileInterval:
    """CI of the q-th percentile of a time-ordered series, by batch means of the empirical CDF.

    `launches` labels each value with the launch (repeat) it came from; values
    of one launch must be contiguous and in capture order. With one launch the
    batches are `BATCHES` contiguous slices of it; with several, the interval
    is the wider of the within-launch one (every launch cut into at least two
    batches) and the one across launches (each launch one batch).
    """
    data, labels = _finite(values, launches)
    if data.size == 0:
        raise ValueError("no finite values")
    estimate = float(np.percentile(data, q))
    launch_groups = [data[labels == label] for label in dict.fromkeys(labels.tolist())]
    per_launch = max(2, BATCHES // len(launch_groups))
    within = [batch for group in launch_groups for batch in _split(group, per_launch)]
    interval = _interval(data, q, estimate, within, level, f"batch means ({len(within)} batches)")
    if len(launch_groups) > 1:
        across = _interval(data, q, estimate, launch_groups, level, f"across {len(launch_groups)} launches")
        if across.high - across.low > interval.high - interval.low:
            interval = across
    return interval


def difference_ci(
    baseline: np.ndarray | list[float],
    candidate: np.ndarray | list[float],
    q: float,
    level: float = 0.99,
    baseline_launches: np.ndarray | list[int] | None = None,
    candidate_launches: np.ndarray | list[int] | None = None,
) -> tuple[float, float]:
    """CI of percentile(candidate) - percentile(baseline): Welch's t from each side's batch-means standard error."""
    a = quantile_ci(baseline, q, baseline_launches, level)
    b = quantile_ci(candidate, q, candidate_launches, level)
    se = float(np.hypot(a.se, b.se))
    delta = b.estimate - a.estimate
    if se == 0:
        return (delta, delta)
    df = se**4 / (a.se**4 / a.df + b.se**4 / b.df) if a.se and b.se else max(a.df, b.df)
    half = float(student_t.ppf(0.5 + level / 2, df)) * se
    return (delta - half, delta + half)


def growth_slope(times_s: np.ndarray | list[float], latency_ms: np.ndarray | list[float]) -> float | None:
    """Least-squares slope of latency over capture time (ms per s): a backlog shows as a steady rise."""
    t = np.asarray(times_s, dtype=float)
    y = np.asarray(latency_ms, dtype=float)
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    if t.size < 3 or np.ptp(t) == 0:
        return None
    slope, _ = np.polyfit(t, y, 1)
    return float(slope)


def _finite(values: np.ndarray | list[float], launches: np.ndarray | list[int] | None) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(values, dtype=float)
    labels = np.zeros(data.size, dtype=int) if launches is None else np.asarray(launches)
    if labels.shape != data.shape:
        raise ValueError(f"{labels.size} launch labels for {data.size} values")
    keep = np.isfinite(data)
    return data[keep], labels[keep]


def _split(group: np.ndarray, parts: int) -> list[np.ndarray]:
    return [batch for batch in np.array_split(group, min(parts, group.size)) if batch.size]


def _interval(
    data: np.ndarray, q: float, estimate: float, batches: list[np.ndarray], level: float, method: str
) -> QuantileInterval:
    """Batch means of 1{x <= estimate}, mapped back through the empirical quantile function.

    Coverage measured with `benchmarks/ci_coverage.py` (BENCHMARKS.md).
    """
    p = q / 100
    if len(batches) < 2:
        low, high = float(data.min()), float(data.max())
        return QuantileInterval(estimate, low, high, (high - low) / 2, 1, "range (too few frames for batches)")
    fractions = np.array([(batch <= estimate).mean() for batch in batches])
    se_p = max(float(fractions.std(ddof=1)) / np.sqrt(len(batches)), SE_FLOOR * np.sqrt(p * (1 - p) / data.size))
    df = len(batches) - 1
    critical = float(student_t.ppf(0.5 + level / 2, df))
    low, high = (float(np.percentile(data, 100 * min(max(p + sign * critical * se_p, 0.0), 1.0))) for sign in (-1, 1))
    # the standard error in the data's units, for differences of two percentiles
    return QuantileInterval(estimate, low, high, (high - low) / (2 * critical), df, method)
