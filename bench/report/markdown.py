"""Markdown that pastes into a PR comment or a CI step summary. Renders only; computes nothing."""

from __future__ import annotations

from html import escape
from typing import Any

from bench.claims import ClaimVerdict
from bench.compare import CaseComparison
from bench.headline import Finding, shared_texts
from bench.report.cells import (
    CLAIM_HEAD,
    COMPARISON_HEAD,
    STREAM_METRIC_HEAD,
    claim_cells,
    comparison_cells,
    gate_rule,
    sample_count,
    stream_metric_rows,
)

VERDICT_MARK = {
    "worse": "🔴 worse",
    "better": "🟢 better",
    "no change": "no change",
    "missing": "🔴 missing",
    "not ok": "🔴 not ok",
    "baseline not ok": "⚪ baseline not ok",
    "new": "⚪ new",
}
CLAIM_MARK = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "❔ inconclusive"}
FINDING_MARK = {"info": "", "warn": "⚠️ ", "fail": "❌ "}


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
            f"| {_cell(case['case'])} | {case['status']} | {sample_count(case)} | {with_ci('p50')} | "
            f"{with_ci('p95')} | {_ms(event.get('p50'))} | {case['fps']:.1f} | {case['lost_ratio']:.1%} | "
            f"{'-' if growth is None else f'{growth:+.1f}'} |"
        )
    return "\n".join(lines)


def stream_metrics_table(cases: list[dict[str, Any]]) -> str:
    rows = stream_metric_rows(cases)
    if not rows:
        return ""
    lines = ["| " + " | ".join(STREAM_METRIC_HEAD) + " |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def findings_list(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"- {FINDING_MARK[finding.level]}{_cell(finding.text)}")
        lines += [f"  - {_cell(detail)}" for detail in finding.details]
    return "\n".join(lines)


def notes_list(cases: list[dict[str, Any]]) -> str:
    notes = shared_texts(cases, "notes")
    return "\n".join(
        f"- **{'all cases' if n.every_case else _cell(', '.join(n.cases))}**: {_cell(n.text)}" for n in notes
    )


def claims_table(verdicts: list[ClaimVerdict]) -> str:
    lines = ["| " + " | ".join(CLAIM_HEAD) + " |", "| --- | --- | --- | ---: | ---: | --- |"]
    for verdict in verdicts:
        cells = [_cell(c) for c in claim_cells(verdict)]
        cells[2] = CLAIM_MARK[verdict.status]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_table(comparisons: list[CaseComparison], baseline: str, candidate: str, threshold: float) -> str:
    lines = [
        f"Baseline `{_cell(baseline)}` vs candidate `{_cell(candidate)}`. {gate_rule(threshold)}",
        "",
        "| " + " | ".join(COMPARISON_HEAD) + " |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for comparison in comparisons:
        cells = [_cell(c) for c in comparison_cells(comparison)]
        cells[1] = VERDICT_MARK[comparison.verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_summary(
    summary: dict[str, Any], findings: list[Finding], verdicts: list[ClaimVerdict], environment: dict[str, Any]
) -> str:
    parts = [
        f"## streambench: {_cell(summary['scenario'])} ({summary['status']})",
        "",
        f"Run `{summary['run_id']}`",
        "",
        "### What this run says",
        "",
        findings_list(findings),
        "",
        "### Cases",
        "",
        cases_table(summary),
        "",
    ]
    metrics = stream_metrics_table(summary.get("cases", []))
    if metrics:
        parts += ["### Output streams, audio and voice turns", "", metrics, ""]
    if verdicts:
        parts += ["### Claims", "", claims_table(verdicts), ""]
    notes = notes_list(summary.get("cases", []))
    if notes:
        parts += ["### Notes", "", notes, ""]
    packages = ", ".join(f"{k} {v}" for k, v in environment.get("packages", {}).items() if v)
    machine = f"{_cell(environment.get('cpu_model', '?'))} x{environment.get('cpu_count', '?')}"
    revision = environment.get("git_revision") or "?"
    parts += [f"<sub>{machine}, Python {environment.get('python', '?')}, {_cell(packages)}, rev {revision}</sub>", ""]
    return "\n".join(parts)
