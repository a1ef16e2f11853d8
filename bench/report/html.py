"""One self-contained HTML page per run (PNGs embedded). Every name is escaped; no scripts."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from bench.claims import ClaimVerdict
from bench.headline import Finding, shared_texts
from bench.report.cells import (
    CLAIM_HEAD,
    LOAD_HEAD,
    STREAM_METRIC_HEAD,
    claim_cells,
    load_rows,
    sample_count,
    stream_metric_rows,
)

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.warn td{background:#fff3cd}
.warning{background:#fff3cd;border-left:4px solid #e0a800;padding:.5rem 1rem;margin:.5rem 0}
.fail{color:#b00020;font-weight:bold}.pass{color:#1b7f3b;font-weight:bold}.inconclusive{color:#8a6d00}
img{max-width:100%;border:1px solid #eee;margin:.5rem 0}
.env{font-size:.8rem;color:#555}
.meta{color:#555;margin-top:-.5rem}
ul.findings{background:#f4f8fb;border-left:4px solid #2b6cb0;padding:.6rem 1rem .6rem 2rem;line-height:1.5}
ul.findings li.warn{color:#7a5b00}ul.findings li.fail{color:#b00020}
ul.findings ul{color:#222;margin:.1rem 0 .3rem}
"""


def image(title: str, png: bytes) -> str:
    data = base64.b64encode(png).decode()
    return f'<h3>{escape(title)}</h3>\n<img alt="{escape(title)}" src="data:image/png;base64,{data}">'


def page(title: str, body: list[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n<h1>{escape(title)}</h1>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def cases_table(cases: list[dict[str, Any]]) -> str:
    head = ("case", "status", "n", "p50 ms [95% CI]", "p95 ms [95% CI]", "event p50 ms", "fps", "lost", "growth ms/s")
    rows = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for case in cases:
        latency = case.get("latency_ms") or {}
        event = case.get("event_latency_ms") or {}

        def with_ci(stat: str, latency: dict = latency) -> str:
            return (
                f"{latency[stat]:.1f} [{latency[f'{stat}_ci'][0]:.1f}, {latency[f'{stat}_ci'][1]:.1f}]"
                if latency
                else "-"
            )

        growth = case.get("growth_ms_per_s")
        cells = (
            case["case"],
            case["status"],
            sample_count(case),
            with_ci("p50"),
            with_ci("p95"),
            f"{event['p50']:.1f}" if event else "-",
            f"{case['fps']:.1f}",
            f"{case['lost_ratio']:.1%}",
            "-" if growth is None else f"{growth:+.1f}",
        )
        flagged = ' class="warn"' if case.get("status") != "ok" or case.get("warnings") or case.get("error") else ""
        rows.append(f"<tr{flagged}>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    return "\n".join(rows) + "</table>"


def stream_metrics_block(cases: list[dict[str, Any]]) -> str:
    rows = stream_metric_rows(cases)
    if not rows:
        return ""
    lines = [
        "<h2>Output streams, audio and voice turns</h2>",
        "<p>What the clients measured beyond per-sample latency: quantiles pooled over every raw value of every "
        "repeat, or totals.</p>",
        "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in STREAM_METRIC_HEAD) + "</tr>",
    ]
    lines += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows]
    return "\n".join(lines) + "</table>"


def load_block(cases: list[dict[str, Any]]) -> str:
    """Per client process: a case whose load generator was saturated measured streambench, not the app."""
    rows = load_rows(cases)
    if not rows:
        return ""
    density = [c["client_core_s_per_client_s"] for c in cases if c.get("client_core_s_per_client_s")]
    lines = [
        "<h2>Load generator</h2>",
        "<p>What driving the users cost each client process. Above 80 % of a core, or an event loop waking more "
        "than 20 ms late (p95), the case is client-bound: its latency is streambench's limit, not the app's. "
        + (f"Client CPU per user-second: {_span(density)} core-seconds." if density else "")
        + "</p>",
        "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in LOAD_HEAD) + "</tr>",
    ]
    for row in rows:
        cells = [f"<td>{escape(c)}</td>" for c in row]
        if row[-1] == "yes":
            cells[-1] = f'<td class="fail">{escape(row[-1])}</td>'
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(lines) + "</table>"


def _span(values: list[float]) -> str:
    low, high = f"{min(values):.3f}", f"{max(values):.3f}"
    return low if low == high else f"{low}-{high}"


def findings_block(findings: list[Finding]) -> str:
    mark = {"info": "", "warn": "⚠ ", "fail": "✗ "}
    items = []
    for finding in findings:
        details = "".join(f"<li>{escape(d)}</li>" for d in finding.details)
        items.append(
            f'<li class="{finding.level}">{mark[finding.level]}{escape(finding.text)}'
            + (f"<ul>{details}</ul>" if details else "")
            + "</li>"
        )
    return '<h2>What this run says</h2><ul class="findings">' + "".join(items) + "</ul>"


def notes_block(cases: list[dict[str, Any]]) -> str:
    notes = shared_texts(cases, "notes")
    if not notes:
        return ""
    items = "".join(
        f"<li><b>{'all cases' if n.every_case else escape(', '.join(n.cases))}</b>: {escape(n.text)}</li>"
        for n in notes
    )
    return f"<h2>Notes</h2><ul>{items}</ul>"


def claims_block(verdicts: list[ClaimVerdict]) -> str:
    if not verdicts:
        return ""
    rows = ["<h2>Claims</h2><table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in CLAIM_HEAD) + "</tr>"]
    for verdict in verdicts:
        cells = [f"<td>{escape(c)}</td>" for c in claim_cells(verdict)]
        cells[2] = f'<td class="{verdict.status}">{escape(verdict.status)}</td>'
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(rows) + "</table>"


def environment_block(environment: dict[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in environment.get("packages", {}).items() if v)
    facts = (
        ("CPU", f"{environment.get('cpu_model', '?')} x {environment.get('cpu_count', '?')}"),
        ("Python", environment.get("python", "?")),
        ("Platform", environment.get("platform", "?")),
        ("Packages", packages),
        ("Revision", environment.get("git_revision") or "?"),
        ("Clock", environment.get("clock", "")),
    )
    return (
        '<h2>Environment</h2><div class="env">'
        + "<br>".join(f"<b>{escape(k)}</b>: {escape(str(v))}" for k, v in facts)
        + "</div>"
    )
