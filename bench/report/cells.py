"""Plain-text cells shared by the Markdown, HTML and terminal renderings of comparisons and claims."""

from __future__ import annotations

from typing import Any

from bench.claims import ClaimVerdict
from bench.compare import THRESHOLD_FACTOR, CaseComparison, MetricDelta

COMPARISON_HEAD = (
    "case",
    "verdict",
    "p50 ms (base → new)",
    "Δp50 [99% CI]",
    "p95 ms (base → new)",
    "Δp95 [99% CI]",
    "why",
)
CLAIM_HEAD = ("claim", "case", "verdict", "measured", "95% CI", "why")
STREAM_METRIC_HEAD = ("case", "metric", "p50", "p95", "max", "n / total")
LOAD_HEAD = (
    "case",
    "client process",
    "users",
    "CPU % of a core",
    "loop lag p95 ms",
    "memory MB start -> end",
    "client-bound",
)


def stream_metric_rows(cases: list[dict[str, Any]]) -> list[list[str]]:
    """One row per case and client-reported metric: quantiles of raw values, or a total (rebuffers, turns)."""
    rows = []
    for case in cases:
        for name, value in (case.get("stream_metrics") or {}).items():
            if isinstance(value, dict):
                cells = [_number(value.get(stat)) for stat in ("p50", "p95", "max")]
                rows.append([case["case"], name, *cells, str(value.get("n", 0))])
            else:
                rows.append([case["case"], name, "", "", "", _number(value)])
    return rows


def load_rows(cases: list[dict[str, Any]]) -> list[list[str]]:
    """One row per client process of each case: was the load generator itself the bottleneck?"""
    rows = []
    for case in cases:
        for process in case.get("client_processes") or []:
            lag = (process.get("loop_lag_ms") or {}).get("p95")
            rss = process.get("rss_mb") or {}
            rows.append(
                [
                    case["case"],
                    f"{process['pid']} on {process['host']}",
                    str(process["users"]),
                    f"{process['cpu_percent']:.0f}",
                    _number(lag),
                    f"{_number(rss.get('start'))} -> {_number(rss.get('end'))}",
                    "yes" if case.get("client_bound") else "no",
                ]
            )
    return rows


def sample_count(case: dict[str, Any]) -> str:
    """The cases table's n: frames measured, or scene switches when latency came from change detection."""
    return f"{case['n']} switches" if case.get("latency_method") == "change" else str(case["n"])


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def gate_rule(threshold: float) -> str:
    return (
        f"A case fails when it was ok in the baseline and is missing or not ok now, or when it is slower by more "
        f"than {threshold:.0%} at p50 ({THRESHOLD_FACTOR['p95'] * threshold:.0%} at p95) with a 99% interval of "
        "the difference above zero."
    )


def comparison_cells(comparison: CaseComparison) -> list[str]:
    cells = [comparison.case, comparison.verdict]
    for stat in ("p50", "p95"):
        delta = comparison.deltas.get(stat)
        cells += [f"{delta.baseline:.1f} → {delta.candidate:.1f}", _delta(delta)] if delta else ["-", "-"]
    return [*cells, comparison.reason]


def claim_cells(verdict: ClaimVerdict) -> list[str]:
    sign = "+" if verdict.values is not None else ""  # a difference carries its sign
    ci = f"[{verdict.ci[0]:{sign}.1f}, {verdict.ci[1]:{sign}.1f}]" if verdict.ci else "-"
    return [verdict.claim, verdict.case, verdict.status, claim_measured(verdict), ci, verdict.reason]


def claim_measured(verdict: ClaimVerdict) -> str:
    """A value, or for a `than` claim the difference with both sides: "-9.0 ms (45.7 vs 54.7)"."""
    if verdict.value is None:
        return "-"
    if verdict.values is not None:
        mine, theirs = verdict.values
        return f"{verdict.value:+.1f} ({mine:.1f} vs {theirs:.1f} of {verdict.other_case})"
    return f"{verdict.value:.3g}" if abs(verdict.value) < 1 else f"{verdict.value:.1f}"


def _delta(delta: MetricDelta) -> str:
    return f"{delta.delta:+.1f} ({delta.relative:+.0%}) [{delta.ci[0]:+.1f}, {delta.ci[1]:+.1f}]"
