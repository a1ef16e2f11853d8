"""Write a run in formats other tools read: pytest-benchmark, github-action-benchmark,
Bencher (BMF), CSV, and our own baseline file for `bench check --baseline`."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.compare import BASELINE_FORMAT, measured_latencies, run_cases
from bench.errors import UsageError
from bench.store import RunData, atomic_write_bytes

FORMATS = ("pytest-benchmark", "github-action-benchmark", "bencher", "csv", "baseline")
SUFFIX = {"csv": ".csv"}


def export_run(run: RunData, fmt: str, out: Path | None = None) -> Path:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: unknown (allowed: {', '.join(FORMATS)})")
    text = {
        "pytest-benchmark": _pytest_benchmark,
        "github-action-benchmark": _github_action_benchmark,
        "bencher": _bencher,
        "csv": _csv,
        "baseline": _baseline,
    }[fmt](run)
    path = out or run.path / f"export-{fmt}{SUFFIX.get(fmt, '.json')}"
    atomic_write_bytes(path, text.encode())
    return path


def _cases(run: RunData) -> list[dict[str, Any]]:
    return [c for c in run.summary.get("cases", []) if c.get("latency_ms")]


def _pytest_benchmark(run: RunData) -> str:
    """pytest-benchmark's saved-run JSON (times in seconds), so `pytest-benchmark compare` loads it."""
    latencies = measured_latencies(run)
    environment = run.run.get("environment", {})
    benchmarks = []
    for case in _cases(run):
        data = latencies.get(case["case"], np.empty(0)) / 1000
        if not len(data):
            continue
        q1, q3 = np.percentile(data, [25, 75])
        iqr = q3 - q1
        mean, stddev = float(data.mean()), float(data.std(ddof=1)) if len(data) > 1 else 0.0
        benchmarks.append(
            {
                "group": run.summary.get("scenario"),
                "name": case["case"],
                "fullname": f"{run.summary.get('scenario')}::{case['case']}",
                "params": case.get("params") or None,
                "param": None,
                "extra_info": {
                    "unit": "s end-to-end latency per frame",
                    "fps": case["fps"],
                    "lost_ratio": case["lost_ratio"],
                },
                "options": {
                    "disable_gc": False,
                    "timer": "perf_counter",
                    "min_rounds": 1,
                    "max_time": 0,
                    "min_time": 0,
                    "warmup": False,
                },
                "stats": {
                    "min": float(data.min()),
                    "max": float(data.max()),
                    "mean": mean,
                    "stddev": stddev,
                    "rounds": len(data),
                    "median": float(np.median(data)),
                    "iqr": float(iqr),
                    "q1": float(q1),
                    "q3": float(q3),
                    "iqr_outliers": int(((data < q1 - 1.5 * iqr) | (data > q3 + 1.5 * iqr)).sum()),
                    "stddev_outliers": int((np.abs(data - mean) > stddev).sum()),
                    "outliers": "",
                    "ld15iqr": float(data[data >= q1 - 1.5 * iqr].min()),
                    "hd15iqr": float(data[data <= q3 + 1.5 * iqr].max()),
                    "ops": 1 / mean if mean else 0.0,
                    "total": float(data.sum()),
                    "iterations": 1,
                },
            }
        )
    document = {
        "machine_info": {
            "node": "streambench",
            "processor": environment.get("cpu_model"),
            "machine": environment.get("machine"),
            "python_implementation": "CPython",
            "python_version": environment.get("python"),
            "cpu": {"count": environment.get("cpu_count"), "brand_raw": environment.get("cpu_model")},
        },
        "commit_info": {
            "id": environment.get("git_revision"),
            "dirty": str(environment.get("git_revision", "")).endswith("-dirty"),
        },
        "benchmarks": benchmarks,
        "datetime": run.run.get("started") or datetime.now(UTC).isoformat(),
        "version": "5.2.3",
    }
    return json.dumps(document, indent=2)


def _github_action_benchmark(run: RunData) -> str:
    """`customSmallerIsBetter`: one entry per case and percentile."""
    entries = []
    for case in _cases(run):
        for stat in ("p50", "p95"):
            low, high = case["latency_ms"][f"{stat}_ci"]
            entries.append(
                {
                    "name": f"{case['case']} latency {stat}",
                    "unit": "ms",
                    "value": round(case["latency_ms"][stat], 3),
                    "range": f"95% CI {low:.1f}..{high:.1f}",
                    "extra": f"n={case['n']} fps={case['fps']:.1f} lost={case['lost_ratio']:.2%}",
                }
            )
    return json.dumps(entries, indent=2)


def _bencher(run: RunData) -> str:
    """Bencher Metric Format: benchmark -> measure -> value with bounds."""
    document = {}
    for case in _cases(run):
        latency = case["latency_ms"]
        document[case["case"]] = {
            f"latency-{stat}": {
                "value": latency[stat],
                "lower_value": latency[f"{stat}_ci"][0],
                "upper_value": latency[f"{stat}_ci"][1],
            }
            for stat in ("p50", "p95")
        }
        document[case["case"]]["fps"] = {"value": case["fps"]}
    return json.dumps(document, indent=2)


def _csv(run: RunData) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "case",
            "status",
            "n",
            "p50_ms",
            "p50_ci_low",
            "p50_ci_high",
            "p95_ms",
            "p95_ci_low",
            "p95_ci_high",
            "event_p50_ms",
            "fps",
            "lost_ratio",
            "growth_ms_per_s",
        ]
    )
    for case in run.summary.get("cases", []):
        latency = case.get("latency_ms") or {}
        event = case.get("event_latency_ms") or {}
        writer.writerow(
            [
                case["case"],
                case["status"],
                case["n"],
                latency.get("p50"),
                *(latency.get("p50_ci") or [None, None]),
                latency.get("p95"),
                *(latency.get("p95_ci") or [None, None]),
                event.get("p50"),
                case["fps"],
                case["lost_ratio"],
                case.get("growth_ms_per_s"),
            ]
        )
    return buffer.getvalue()


def _baseline(run: RunData) -> str:
    """Every case's grade and raw measured latencies (with their launch): a baseline that outlives the run."""
    cases = {
        case: {
            "status": series.status,
            "reasons": series.reasons,
            "latency_ms": [round(float(v), 3) for v in series.latency_ms],
            "repeat": [int(r) for r in series.repeats],
        }
        for case, series in run_cases(run).items()
    }
    return json.dumps(
        {
            "format": BASELINE_FORMAT,
            "run_id": run.run_id,
            "scenario": run.summary.get("scenario"),
            "environment": run.run.get("environment", {}),
            "cases": cases,
        }
    )
