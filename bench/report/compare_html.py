"""HTML for `bench compare`: the deltas table and overlaid CDFs per matching case."""

from __future__ import annotations

from html import escape
from pathlib import Path

import pandas as pd

from bench.compare import CaseComparison
from bench.report import html, plots
from bench.store import RunData, atomic_write_bytes


def render_comparison_html(
    baseline: RunData, candidate: RunData, comparisons: list[CaseComparison], out_dir: Path
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    head = ("case", "verdict", "p50 base → new", "Δp50 [99% CI]", "p95 base → new", "Δp95 [99% CI]")
    rows = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    body = [
        f"<p>Baseline <code>{escape(baseline.run_id)}</code> vs candidate <code>{escape(candidate.run_id)}</code>.</p>"
    ]
    for comparison in comparisons:
        cells = [comparison.case, comparison.verdict]
        for stat in ("p50", "p95"):
            delta = comparison.deltas.get(stat)
            if delta is None:
                cells += ["-", "-"]
            else:
                ci = f"[{delta.ci[0]:+.1f}, {delta.ci[1]:+.1f}]"
                cells += [f"{delta.baseline:.1f} → {delta.candidate:.1f}", f"{delta.delta:+.1f} {ci}"]
        rows.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    body.append("\n".join(rows) + "</table>")
    for comparison in comparisons:
        if comparison.verdict == "missing":
            continue
        sides = {"baseline": baseline, "candidate": candidate}
        overlaid = pd.concat(
            run.samples[run.samples["case"] == comparison.case].assign(case=f"{side}: {comparison.case}")
            for side, run in sides.items()
        )
        png = plots.latency_cdf(overlaid, [f"{side}: {comparison.case}" for side in sides])
        body.append(html.image(f"{comparison.case}: {comparison.verdict}", png))
    path = out_dir / "compare.html"
    atomic_write_bytes(path, html.page("streambench compare", body).encode())
    return path
