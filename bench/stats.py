"""Exact percentiles from raw samples, bootstrap CIs, and latency growth.

Statistics never print and never read files: data in, records out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

PERCENTILES = (50, 90, 95, 99)
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261125


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

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["p50_ci"] = list(self.p50_ci)
        data["p95_ci"] = list(self.p95_ci)
        return data


def latency_stats(values: np.ndarray | list[float], seed: int = BOOTSTRAP_SEED) -> LatencyStats | None:
    """Percentiles (linear interpolation, numpy's default) and 95 % bootstrap CIs of p50 and p95."""
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return None
    p50, p90, p95, p99 = (float(v) for v in np.percentile(data, PERCENTILES))
    return LatencyStats(
        n=int(data.size),
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
        mean=float(data.mean()),
        max=float(data.max()),
        min=float(data.min()),
        p50_ci=bootstrap_ci(data, 50, seed=seed),
        p95_ci=bootstrap_ci(data, 95, seed=seed),
    )


def bootstrap_quantiles(
    data: np.ndarray, q: float, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> np.ndarray:
    """The q-th percentile of `resamples` resamples with replacement (chunked to bound memory)."""
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    chunk = max(1, min(resamples, 4_000_000 // max(len(data), 1)))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        picks = data[rng.integers(0, len(data), size=(stop - start, len(data)))]
        out[start:stop] = np.percentile(picks, q, axis=1)
    return out


def bootstrap_ci(
    data: np.ndarray, q: float, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the q-th percentile."""
    if len(data) < 2:
        value = float(np.percentile(data, q))
        return (value, value)
    boot = bootstrap_quantiles(data, q, resamples, seed)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return (float(low), float(high))


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


def block_resample_indices(n: int, resamples: int, rng: np.random.Generator, blocks: int = 20) -> np.ndarray:
    """(resamples, n) indices made of runs of about n / `blocks` consecutive samples (circular)."""
    length = max(1, n // blocks)
    starts = rng.integers(0, n, size=(resamples, int(np.ceil(n / length))))
    return ((starts[:, :, None] + np.arange(length)) % n).reshape(resamples, -1)[:, :n]


def block_bootstrap_quantiles(
    data: np.ndarray, q: float, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> np.ndarray:
    """Moving-block bootstrap of the q-th percentile for a time-ordered series.

    Consecutive latencies are correlated (a slow second slows many frames), so
    resampling single frames understates the uncertainty; resampling runs of
    consecutive frames keeps that correlation.
    """
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    chunk = max(1, min(resamples, 4_000_000 // max(len(data), 1)))
    for begin in range(0, resamples, chunk):
        stop = min(resamples, begin + chunk)
        out[begin:stop] = np.percentile(data[block_resample_indices(len(data), stop - begin, rng)], q, axis=1)
    return out


def difference_ci(
    baseline: np.ndarray, candidate: np.ndarray, q: float, level: float = 0.99, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """CI of percentile(candidate) - percentile(baseline), block-bootstrapping each side independently."""
    a = block_bootstrap_quantiles(np.asarray(baseline, float), q, seed=seed)
    b = block_bootstrap_quantiles(np.asarray(candidate, float), q, seed=seed + 1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(b - a, [tail, 100 - tail])
    return (float(low), float(high))
