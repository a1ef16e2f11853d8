"""How often do streambench's nominal-95 % intervals cover the truth? (BENCHMARKS.md, "Confidence intervals")

    python benchmarks/ci_coverage.py synthetic [--trials 1000] [--n 300]
    python benchmarks/ci_coverage.py real RUN_DIR [--case CASE]

`synthetic`: latency-like data (lognormal of a Gaussian AR(1), so the true
percentiles are known) at several lag-1 autocorrelations, single launches and
launches with a run-to-run shift; coverage of p50 and p95 for streambench's
interval, and for comparison an iid bootstrap and arch's circular / stationary
block bootstraps with an automatic block length (if `arch` is installed).

`real`: a run with `repeat = N` (N >= 6) of one case; each launch's interval is
checked against the pooled percentile of all OTHER launches (the best estimate
of the truth that launch did not see), and the same for intervals made from
groups of 3 launches.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy.stats import norm

from bench.compare import measured_latencies
from bench.stats import quantile_ci
from bench.store import load_run

MU, SIGMA = 4.0, 0.3  # exp(4) ~ 55 ms median, a spread like the real runs
RHOS = (0.0, 0.5, 0.78, 0.9)
QUANTILES = (50, 95)


def ar1(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    noise = rng.normal(size=n)
    x = np.empty(n)
    x[0] = noise[0]
    scale = np.sqrt(1 - rho**2)
    for i in range(1, n):
        x[i] = rho * x[i - 1] + scale * noise[i]
    return x


def streambench_ci(y: np.ndarray, q: float, launches: np.ndarray | None) -> tuple[float, float]:
    interval = quantile_ci(y, q, launches)
    return interval.low, interval.high


def bootstrap_ci(method: str, y: np.ndarray, seed: int) -> list[tuple[float, float]]:
    from arch.bootstrap import CircularBlockBootstrap, IIDBootstrap, StationaryBootstrap, optimal_block_length

    if method == "iid bootstrap":
        bootstrap = IIDBootstrap(y, seed=seed)
    else:
        block = optimal_block_length(y)
        if method == "arch circular block":
            bootstrap = CircularBlockBootstrap(max(1, int(np.ceil(block["circular"].iloc[0]))), y, seed=seed)
        else:
            bootstrap = StationaryBootstrap(max(1.0, float(block["stationary"].iloc[0])), y, seed=seed)
    estimates = bootstrap.apply(lambda a: np.percentile(a, QUANTILES), reps=999)
    return [tuple(np.percentile(estimates[:, j], [2.5, 97.5])) for j in range(len(QUANTILES))]


def synthetic(trials: int, n: int, launches: int, shift_sd: float, methods: list[str]) -> None:
    sigma_total = np.sqrt(SIGMA**2 + shift_sd**2)
    truth = {q: float(np.exp(MU + sigma_total * norm.ppf(q / 100))) for q in QUANTILES}
    print(f"n = {n} frames per launch, {launches} launch(es), launch shift sd {shift_sd:.2f} (log), {trials} trials")
    for rho in RHOS:
        rng = np.random.default_rng(int(rho * 1000) + launches)
        covered = {(m, q): 0 for m in methods for q in QUANTILES}
        for trial in range(trials):
            parts = [MU + rng.normal(0, shift_sd) + SIGMA * ar1(rng, n, rho) for _ in range(launches)]
            y = np.exp(np.concatenate(parts))
            labels = np.repeat(np.arange(launches), n) if launches > 1 else None
            for method in methods:
                if method == "streambench":
                    intervals = [streambench_ci(y, q, labels) for q in QUANTILES]
                else:
                    intervals = bootstrap_ci(method, y, trial)
                for q, (low, high) in zip(QUANTILES, intervals, strict=True):
                    covered[(method, q)] += low <= truth[q] <= high
        for method in methods:
            cells = ", ".join(f"p{q} {covered[(method, q)] / trials:.1%}" for q in QUANTILES)
            print(f"  rho {rho:<4}  {method:<24} {cells}")


def real(run_dir: str, case: str | None) -> None:
    run = load_run(run_dir)
    frame = run.samples[(~run.samples["warmup"]) & (run.samples["status"] == "ok")]
    case = case or next(iter(measured_latencies(run)))
    frame = frame[frame["case"] == case].sort_values(["repeat", "user", "capture_s"])
    launches = sorted(frame["repeat"].unique())
    if len(launches) < 6:
        sys.exit(f"{run_dir}: case {case} has {len(launches)} launches; run it with repeat >= 6")
    print(f"{case}: {len(launches)} launches, {len(frame)} frames")
    for q in QUANTILES:
        single = groups = group_count = 0
        for launch in launches:
            mine = frame[frame["repeat"] == launch]["latency_ms"].to_numpy()
            rest = frame[frame["repeat"] != launch]["latency_ms"].to_numpy()
            low, high = streambench_ci(mine, q, None)
            single += low <= np.percentile(rest, q) <= high
        for start in range(0, len(launches) - 2, 3):
            chosen = launches[start : start + 3]
            inside = frame[frame["repeat"].isin(chosen)]
            rest = frame[~frame["repeat"].isin(chosen)]["latency_ms"].to_numpy()
            low, high = streambench_ci(inside["latency_ms"].to_numpy(), q, inside["repeat"].to_numpy())
            groups += low <= np.percentile(rest, q) <= high
            group_count += 1
        per_launch = [np.percentile(frame[frame["repeat"] == r]["latency_ms"], q) for r in launches]
        print(
            f"  p{q}: per-launch values {min(per_launch):.1f}-{max(per_launch):.1f} ms; intervals covering the "
            f"other launches' pooled p{q}: single-launch {single}/{len(launches)}, 3-launch {groups}/{group_count}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    synth = sub.add_parser("synthetic")
    synth.add_argument("--trials", type=int, default=1000)
    synth.add_argument("--n", type=int, default=300)
    synth.add_argument("--bootstraps", action="store_true", help="also iid and arch block bootstraps (slow)")
    measured = sub.add_parser("real")
    measured.add_argument("run")
    measured.add_argument("--case")
    args = parser.parse_args()
    if args.mode == "real":
        real(args.run, args.case)
        return
    methods = ["streambench"]
    if args.bootstraps:
        methods += ["iid bootstrap", "arch circular block", "arch stationary block"]
    synthetic(args.trials, args.n, 1, 0.0, methods)
    synthetic(args.trials, args.n, 3, 0.05, ["streambench"])


if __name__ == "__main__":
    main()
