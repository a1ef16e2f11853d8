"""Markdown that pastes into a PR comment or a CI step summary. Renders only; computes nothing."""

from __future__ import annotations

from html import escape
from typing import Any

from bench.claims import ClaimVerdict
from bench.compare import THRESHOLD_FACTOR, CaseComparison

VERDICT_MARK = {"worse": "🔴 worse", "better": "🟢 better", "no change": "no change", "missing": "⚪ missing"}
CLAIM_MARK = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "❔ inconclusive"}


def _cell(text: object) -> str:
    """A table cell: pipes escaped, and HTML escaped because GitHub renders inline HTML in Markdown."""
    return escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def cases_table(summary: dict[str, Any]) -> str:
    lines = [
        "| case | status | n | p50 ms [95% CI] | p95 ms [95% CI] | event p50 ms | fps | lost | growth ms/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case in summary.get("cases", []):
        latency = case.get("latency_ms") or {}
        event = case.get("event_latency_ms") or {}
        growth = case.get("growth_ms_per_s")

        def with_ci(stat: str, latency: dict = latency) -> str:
            if not latency:
                return "-"
            low, high = latency[f"{stat}_ci"]
            return f"{latency[stat]:.1f} [{low:.1f}, {high:.1f}]"

        lines.append(
            f"| {_cell(case['case'])} | {case['status']} | {case['n']} | {with_ci('p50')} | {with_ci('p95')} | "
            f"{_ms(event.get('p50'))} | {case['fps']:.1f} | {case['lost_ratio']:.1%} | "
            f"{'-' if growth is None else f'{growth:+.1f}'} |"
        )
    return "\n".join(lines)


def warnings_list(summary: dict[str, Any]) -> str:
    items = [f"- **{_cell(c['case'])}**: {_cell(w)}" for c in summary.get("cases", []) for w in c.get("warnings", [])]
    items += [
        f"- **{_cell(c['case'])}** failed: {_cell(c['error'])}" for c in summary.get("cases", []) if c.get("error")
    ]
    return "\n".join(items)


def claims_table(verdicts: list[ClaimVerdict]) -> str:
    lines = ["| claim | case | verdict | measured | 95% CI |", "| --- | --- | --- | ---: | ---: |"]
    for v in verdicts:
        ci = f"[{v.ci[0]:.1f}, {v.ci[1]:.1f}]" if v.ci else "-"
        lines.append(f"| {_cell(v.claim)} | {_cell(v.case)} | {CLAIM_MARK[v.status]} | {_ms(v.value)} | {ci} |")
    return "\n".join(lines)


def comparison_table(comparisons: list[CaseComparison], baseline: str, candidate: str, threshold: float) -> str:
    lines = [
        f"Baseline `{_cell(baseline)}` vs candidate `{_cell(candidate)}`; a change counts when it exceeds "
        f"{threshold:.0%} (p95: {THRESHOLD_FACTOR['p95'] * threshold:.0%}) and its 99% block-bootstrap interval "
        "excludes zero.",
        "",
        "| case | verdict | p50 ms (base → new) | Δp50 [99% CI] | p95 ms (base → new) | Δp95 [99% CI] |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for comparison in comparisons:
        cells = []
        for stat in ("p50", "p95"):
            delta = comparison.deltas.get(stat)
            if delta is None:
                cells += ["-", "-"]
                continue
            cells.append(f"{delta.baseline:.1f} → {delta.candidate:.1f}")
            cells.append(f"{delta.delta:+.1f} ({delta.relative:+.0%}) [{delta.ci[0]:+.1f}, {delta.ci[1]:+.1f}]")
        lines.append(f"| {_cell(comparison.case)} | {VERDICT_MARK[comparison.verdict]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_summary(summary: dict[str, Any], verdicts: list[ClaimVerdict], environment: dict[str, Any]) -> str:
    parts = [
        f"## streambench: {_cell(summary['scenario'])} ({summary['status']})",
        "",
        f"Run `{summary['run_id']}`",
        "",
    ]
    parts += [cases_table(summary), ""]
    warnings = warnings_list(summary)
    if warnings:
        parts += ["### Warnings", "", warnings, ""]
    if verdicts:
        parts += ["### Claims", "", claims_table(verdicts), ""]
    notes = [f"- **{_cell(c['case'])}**: {_cell(n)}" for c in summary.get("cases", []) for n in c.get("notes", [])]
    if notes:
        parts += ["### Notes", "", *notes, ""]
    packages = ", ".join(f"{k} {v}" for k, v in environment.get("packages", {}).items() if v)
    machine = f"{_cell(environment.get('cpu_model', '?'))} x{environment.get('cpu_count', '?')}"
    revision = environment.get("git_revision") or "?"
    parts += [f"<sub>{machine}, Python {environment.get('python', '?')}, {_cell(packages)}, rev {revision}</sub>", ""]
    return "\n".join(parts)
