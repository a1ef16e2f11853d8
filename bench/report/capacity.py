"""Capacity of a `[load]` ramp rendered: the terminal table, latency vs users with the knee (PNG / SVG), an HTML
page and Markdown. Renders only; `bench.capacity` decides the knee. Every name is escaped."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from html import escape
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use("Agg"): no display here
from matplotlib.ticker import MaxNLocator
from rich.table import Table
from rich.text import Text

from bench.capacity import Capacity, SeriesCapacity, Step
from bench.report import html
from bench.store import atomic_write_bytes

STEP_HEAD = (
    "users",
    "p50 ms",
    "p95 ms [95% CI]",
    "fps / requested",
    "lost",
    "rejected",
    "queue wait ms (median / max)",
    "status",
    "client-bound",
    "serves",
)


@dataclass
class CapacityPaths:
    html: Path
    markdown: Path
    png: Path
    svg: Path


def knee_text(series: SeriesCapacity) -> str:
    head = f"knee {series.knee} users" if series.knee is not None else "knee: none"
    return f"{series.label}: {head} - {series.reason}"


def step_cells(step: Step) -> list[str]:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    p95 = ms(step.p95_ms)
    if step.p95_ci_ms is not None and step.p95_ms is not None:
        p95 += f" [{step.p95_ci_ms[0]:.1f}, {step.p95_ci_ms[1]:.1f}]"
    fps = "-" if step.fps is None else f"{step.fps:.1f}"
    fps += f" / {step.requested_fps:g}" if step.requested_fps else ""
    queue = "-" if step.queue_wait_ms is None else f"{ms(step.queue_wait_ms)} / {ms(step.queue_wait_max_ms)}"
    serves = "pass" if step.passed else "FAIL: " + ", ".join(step.failed_checks or step.failures)
    return [
        str(step.users),
        ms(step.p50_ms),
        p95,
        fps,
        "-" if step.lost_ratio is None else f"{step.lost_ratio:.1%}",
        str(step.rejected) + (f" (+{step.failed_sessions} failed)" if step.failed_sessions else ""),
        queue,
        step.status,
        "yes" if step.client_bound else "no",
        serves,
    ]


def capacity_table(series: SeriesCapacity) -> Table:
    """The steps of one series for the terminal: rich Text cells, never markup."""
    table = Table(*STEP_HEAD, title=Text(series.label), title_justify="left")
    for step in series.steps:
        table.add_row(*map(Text, step_cells(step)), style=None if step.passed else "red")
    return table


def capacity_figure(capacity: Capacity, fmt: str = "png") -> bytes:
    """Per series, content p50 and p95 (95 % CI band) against users; failing steps crossed, the knee a green
    line, latency claims with a value dashed."""
    shown = capacity.series or []
    columns = min(max(len(shown), 1), 2)
    rows = max(1, -(-len(shown) // columns))
    figure, grid = plt.subplots(rows, columns, figsize=(6 * columns, 4 * rows), squeeze=False)
    for axes in grid.flat[len(shown) :]:
        axes.set_visible(False)
    for axes, series in zip(grid.flat, shown, strict=False):
        timed = [s for s in series.steps if s.p50_ms is not None]
        users = [s.users for s in timed]
        axes.plot(users, [s.p50_ms for s in timed], "o-", label="p50")
        axes.plot(users, [s.p95_ms for s in timed], "s-", label="p95")
        banded = [s for s in timed if s.p95_ci_ms is not None]
        if banded:
            axes.fill_between(
                [s.users for s in banded],
                [s.p95_ci_ms[0] for s in banded],
                [s.p95_ci_ms[1] for s in banded],
                alpha=0.2,
                color="C1",
                label="p95 95% CI",
            )
        failing = [s for s in timed if not s.passed]
        if failing:
            axes.plot(
                [s.users for s in failing], [s.p95_ms for s in failing], "x", color="red", ms=10, label="step fails"
            )
        for metric, op, value in series.latency_bounds:
            axes.axhline(value, color="grey", ls="--", lw=1, label=f"claim {metric} {op} {value:g}")
        if series.knee is not None:
            axes.axvline(series.knee, color="green", lw=2, alpha=0.7, label=f"knee: {series.knee} users")
        title = series.label + ("" if series.knee is not None else " (no knee)")
        axes.set(xlabel="simultaneous users", ylabel="content latency (ms)", title=title)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, loc="best")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        figure.tight_layout()
    figure.savefig(buffer, format=fmt, dpi=90, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
    plt.close(figure)
    return buffer.getvalue()


def capacity_markdown(capacity: Capacity) -> str:
    lines = [f"## Capacity: {_md(capacity.scenario)} (`{_md(capacity.run_id)}`)", ""]
    if not capacity.complete:
        lines += ["⚠️ the ramp did not finish: knees are from the steps that did.", ""]
    for series in capacity.series:
        knee = f"**{series.knee} users**" if series.knee is not None else "**none**"
        lines += [f"### {_md(series.label)}: knee {knee}", "", _md(series.reason), ""]
        lines.append("| " + " | ".join(STEP_HEAD) + " |")
        lines.append("|" + "|".join("---" for _ in STEP_HEAD) + "|")
        lines += ["| " + " | ".join(_md(c) for c in step_cells(step)) + " |" for step in series.steps]
        lines.append("")
    lines.append(f"_{_md(capacity.rule)}_")
    return "\n".join(lines) + "\n"


def capacity_html(capacity: Capacity, png: bytes) -> str:
    body = [f'<p class="meta">Run <code>{escape(capacity.run_id)}</code>, users {_ramp(capacity)}.</p>']
    if not capacity.complete:
        body.append('<p class="warning">The ramp did not finish: knees are from the steps that did.</p>')
    body.append(f"<p>{escape(capacity.rule)}</p>")
    for series in capacity.series:
        knee = f"{series.knee} users" if series.knee is not None else "none"
        css = "pass" if series.knee is not None else "fail"
        body.append(f'<h2>{escape(series.label)}: knee <span class="{css}">{escape(knee)}</span></h2>')
        body.append(f"<p>{escape(series.reason)}</p>")
        rows = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in STEP_HEAD) + "</tr>"]
        for step in series.steps:
            flagged = "" if step.passed else ' class="warn"'
            rows.append(f"<tr{flagged}>" + "".join(f"<td>{escape(c)}</td>" for c in step_cells(step)) + "</tr>")
        body.append("\n".join(rows) + "</table>")
    body.append(html.image("Latency vs users, knee marked", png))
    return html.page(f"streambench capacity: {capacity.scenario}", body)


def render_capacity(capacity: Capacity, out_dir: Path) -> CapacityPaths:
    png, svg = capacity_figure(capacity, "png"), capacity_figure(capacity, "svg")
    paths = CapacityPaths(
        out_dir / "capacity.html", out_dir / "capacity.md", out_dir / "capacity.png", out_dir / "capacity.svg"
    )
    atomic_write_bytes(paths.png, png)
    atomic_write_bytes(paths.svg, svg)
    atomic_write_bytes(paths.markdown, capacity_markdown(capacity).encode())
    atomic_write_bytes(paths.html, capacity_html(capacity, png).encode())
    return paths


def _ramp(capacity: Capacity) -> str:
    users = capacity.users
    return escape(f"{users[0]} to {users[-1]}") if users else "-"


def _md(text: object) -> str:
    """A Markdown cell or line: HTML escaped (GitHub renders inline HTML) and pipes escaped."""
    return escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")
