"""Statistics: exact percentiles, honest intervals, slopes that find a backlog."""

from __future__ import annotations

import numpy as np

from bench.stats import bootstrap_ci, growth_slope, latency_stats


def test_percentiles_are_exact_not_bucketed():
    values = np.arange(1, 1001, dtype=float)
    stats = latency_stats(values)
    assert stats is not None
    assert stats.p50 == np.percentile(values, 50)
    assert stats.p99 == np.percentile(values, 99)
    assert stats.max == 1000 and stats.n == 1000


def test_bootstrap_ci_covers_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    covered = 0
    trials = 200
    for seed in range(trials):
        sample = rng.lognormal(mean=4, sigma=0.3, size=200)
        low, high = bootstrap_ci(sample, 50, resamples=500, seed=seed)
        covered += low <= np.exp(4) <= high
    # 95 % nominal; 200 trials give a binomial sd of ~1.5 %, so 88 % is a 4-sigma floor.
    assert covered / trials >= 0.88


def test_ci_narrows_with_more_samples():
    rng = np.random.default_rng(2)
    small = bootstrap_ci(rng.normal(100, 10, 50), 50)
    large = bootstrap_ci(rng.normal(100, 10, 5000), 50)
    assert (large[1] - large[0]) < (small[1] - small[0]) / 4


def test_growth_slope_recovers_a_backlog_and_ignores_noise():
    rng = np.random.default_rng(3)
    t = np.linspace(0, 10, 300)
    assert abs(growth_slope(t, 80 + 150 * t + rng.normal(0, 5, t.size)) - 150) < 2
    assert abs(growth_slope(t, 80 + rng.normal(0, 5, t.size))) < 2


def test_empty_input_gives_no_stats():
    assert latency_stats([]) is None
    assert growth_slope([1.0], [2.0]) is None
