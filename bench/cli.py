"""Thin command-line front end: parse arguments, call the library, print, exit.

Exit codes: 0 ok, 1 regression / failed claim, 2 usage or scenario error,
3 a target failed, 130 interrupted.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperCommand, TyperGroup, TyperOption

from bench.catalog import TARGET_KINDS, TRANSFORMS
from bench.errors import BenchError, UsageError
from bench.export import FORMATS as EXPORT_FORMATS
from bench.scenario import Case


class _FlagsTakeNoValue:
    """Typer's Rich help prints `<bool>` beside a flag as if it took a value; an empty metavar prints nothing."""

    def get_params(self, ctx: typer.Context) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            if isinstance(param, TyperOption) and param.is_flag:
                param.metavar = ""
        return params


class Command(_FlagsTakeNoValue, TyperCommand):
    """Every `bench` command: its flags, --help included, show no metavar."""


class Group(_FlagsTakeNoValue, TyperGroup):
    """The `bench` group: its own --help and --version show no metavar either."""


app = typer.Typer(cls=Group, add_completion=False, no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True)
FINDING_STYLE = {"info": "", "warn": "yellow", "fail": "red"}


def _print_version(requested: bool) -> None:
    """Eager: `bench --version` answers before any command is required."""
    if requested:
        print(f"streambench {version('streambench')}")
        raise typer.Exit()


WorkersOption = Annotated[
    int, typer.Option("--workers", min=1, help="client processes the users are spread over (here, or on --cluster)")
]
ClusterOption = Annotated[
    str | None, typer.Option("--cluster", help="run the client workers on this Ray cluster (ray start's address)")
]


@app.callback()
def options(
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """streambench: end-to-end latency of real-time apps"""


class ProgressObserver:
    """Shows one bar over all cases, advancing smoothly within each case."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("starting", total=None)

    def case_started(self, case: Case, repeat: int, index: int, total: int, duration_s: float) -> None:
        self.progress.update(
            self.task, total=total, completed=index, description=f"{case.case_id} (repeat {repeat + 1})"
        )

    def case_finished(self, case: Case, repeat: int, summary: dict[str, Any]) -> None:
        self.progress.advance(self.task)
        latency = summary.get("latency_ms") or {}
        self.progress.console.print(
            f"  {case.case_id}: {summary['status']}"
            + (f", p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms" if latency else "")
            + (f" - {summary.get('error')}" if summary.get("error") else ""),
            soft_wrap=True,
            markup=False,
            highlight=False,
        )


@app.command(cls=Command)
def run(
    scenario: Annotated[Path | None, typer.Argument(help="scenario TOML (default scenarios/quick.toml)")] = None,
    out: Annotated[Path, typer.Option("--out", help="where run directories are written")] = Path("runs"),
    no_report: Annotated[bool, typer.Option("--no-report", help="skip rendering the report")] = False,
    report_dir: Annotated[Path, typer.Option("--report-dir", help="where reports are written")] = Path("reports"),
    app_script: Annotated[
        Path | None, typer.Option("--app", help="your app's script: started on loopback, measured, stopped")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="your app, already running (e.g. http://127.0.0.1:7860)")
    ] = None,
    api_name: Annotated[str | None, typer.Option("--api-name", help="which event of the app (bench inspect)")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="drive the app as this target kind")] = None,
    duration: Annotated[float | None, typer.Option("--duration", help="seconds of measurement (own app)")] = None,
    users: Annotated[int, typer.Option("--users", min=1, help="simultaneous users (own app)")] = 1,
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", "--transform-input", help="set an input of the app by label: LABEL=VALUE"),
    ] = None,
    workers: WorkersOption = 1,
    cluster: ClusterOption = None,
) -> None:
    """Run a scenario, or measure your own app (--app / --url): start targets on loopback, drive, report."""
    if app_script is not None or url is not None:
        if scenario is not None:
            raise UsageError("give a scenario file, or --app / --url to measure your own app, not both")
        loaded, path, started = _own_app_scenario(app_script, url, api_name, kind, duration, users, inputs or [])
    else:
        if api_name or kind or duration or users != 1 or inputs:
            raise UsageError("--api-name, --kind, --duration, --users and --input go with --app or --url")
        from bench.scenario import load_scenario

        loaded, path = load_scenario(scenario)
        started = {}
    result = _run_with_progress(loaded, path, out, workers, cluster, started)
    console.print(summary_table(result.summary))
    from bench.report.text import stream_metrics_table

    metrics = stream_metrics_table(result.summary["cases"])
    if metrics is not None:
        console.print(metrics)
    from bench.headline import run_findings
    from bench.store import load_run

    finished = load_run(result.path)
    console.print("What this run says:", style="bold")
    for finding in run_findings(finished):
        console.print(f"- {finding.text}", style=FINDING_STYLE[finding.level], markup=False, highlight=False)
        for detail in finding.details:
            console.print(f"    {detail}", markup=False, highlight=False)
    console.print(f"run directory: {result.path}")
    if not no_report and result.summary["cases"]:
        from bench.report import render_report

        paths = render_report(finished, report_dir / result.path.name)
        console.print(f"report: {paths.html} (Markdown: {paths.markdown})")
    if result.interrupted:
        errors.print(f"interrupted: finished cases kept in {result.path}")
        raise typer.Exit(130)
    if result.target_failed:
        raise typer.Exit(3)


@app.command(cls=Command)
def capacity(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML with a \\[load] section (e.g. scenarios/load.toml)")],
    out: Annotated[Path, typer.Option("--out", help="where run directories are written")] = Path("runs"),
    report_dir: Annotated[Path, typer.Option("--report-dir", help="where reports are written")] = Path("reports"),
    workers: WorkersOption = 1,
    cluster: ClusterOption = None,
) -> None:
    r"""Ramp the users of a \[load] scenario and find each target's knee: the most users its claims hold for.

    Exit 0 when every target has a knee, 1 when one has none, 2 for bad input, 130 when interrupted.
    """
    from bench.capacity import CAPACITY, capacity_of_run
    from bench.report.capacity import capacity_table, knee_text, render_capacity
    from bench.scenario import load_scenario
    from bench.store import atomic_write_json, load_run

    loaded, path = load_scenario(scenario)
    if loaded.load is None:
        raise UsageError(f"{path}: no [load] section: add users_from, users_to, hold_s (see scenarios/load.toml)")
    result = _run_with_progress(loaded, path, out, workers, cluster)
    found = capacity_of_run(load_run(result.path))
    for series in found.series:
        console.print(capacity_table(series))
    console.print("Capacity:", style="bold")
    for series in found.series:
        style = "green" if series.knee is not None else "red"
        console.print(f"- {knee_text(series)}", style=style, markup=False, highlight=False)
    console.print(found.rule, style="dim", markup=False, highlight=False)
    atomic_write_json(result.path / CAPACITY, found.to_dict())
    console.print(f"run directory: {result.path} ({CAPACITY}; bench report for every case)")
    if found.series:
        paths = render_capacity(found, report_dir / result.path.name)
        console.print(f"capacity report: {paths.html} (Markdown: {paths.markdown}, plot: {paths.svg})")
    if result.interrupted:
        errors.print(f"interrupted: finished steps kept in {result.path}")
        raise typer.Exit(130)
    raise typer.Exit(0 if found.all_have_knee else 1)


def _run_with_progress(
    loaded: Any, path: Path, out: Path, workers: int, cluster: str | None, started: dict[str, Any] | None = None
) -> Any:
    """`run_scenario` behind the progress bar `run` and `capacity` both show."""
    from bench.runner import run_scenario
    from bench.workers import WorkerSpec

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        return run_scenario(
            loaded, path, out, ProgressObserver(progress), already_running=started, workers=WorkerSpec(workers, cluster)
        )


def _own_app_scenario(
    app_script: Path | None,
    url: str | None,
    api_name: str | None,
    kind: str | None,
    duration: float | None,
    users: int,
    inputs: list[str],
) -> tuple[Any, Path, dict[str, Any]]:
    from bench.own_app import parse_inputs, plan_own_app

    chosen = parse_inputs(inputs)
    with console.status("reading what the app streams..."):
        plan = plan_own_app(
            app_script, url, api_name=api_name, kind=kind, duration_s=duration, users=users, inputs=chosen
        )
    endpoint, scenario = plan.endpoint, plan.scenario
    others = len(plan.info.endpoints) - 1
    console.print(
        f"measuring {endpoint.name}: {endpoint.what}, as {scenario.targets[0].kind} over {endpoint.transport}, "
        f"{scenario.duration_s:g} s" + (f" ({others} other streaming event(s): bench inspect)" if others else ""),
        markup=False,
        highlight=False,
    )
    if endpoint.note:
        console.print(f"  note: {endpoint.note}", markup=False, highlight=False)
    return scenario, plan.scenario_path, plan.started


@app.command(cls=Command)
def inspect(
    app_script: Annotated[Path | None, typer.Option("--app", help="your app's script (started, read, stopped)")] = None,
    url: Annotated[str | None, typer.Option("--url", help="your app, already running")] = None,
) -> None:
    """List what an app streams: each event, its inputs and outputs, the kind and client that would drive it."""
    from bench.own_app import inspect_app

    info = inspect_app(app_script, url)
    table = Table(title=f"{info.url} ({info.framework})")
    for column in ("event (--api-name)", "what", "kind (--kind)", "transport", "inputs", "outputs", "note"):
        table.add_column(column)
    for endpoint in info.endpoints:
        table.add_row(
            endpoint.name,
            endpoint.what,
            endpoint.kind,
            endpoint.transport,
            "\n".join(endpoint.inputs) or "-",
            "\n".join(endpoint.outputs) or "-",
            endpoint.note,
        )
    if info.endpoints:
        console.print(table)
        console.print(
            f"bench run {'--app ' + str(app_script) if app_script else '--url ' + str(url)} measures the first"
        )
    for other in info.others:
        console.print(f"not streaming: {other}", markup=False, highlight=False)
    if not info.endpoints:
        info.choose()


@app.command(cls=Command)
def report(
    run: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path | None, typer.Option("--out", help="output folder (default reports/<run id>)")] = None,
) -> None:
    """Render summary.md and a self-contained index.html with plots from a run directory."""
    from bench.report import render_report
    from bench.store import load_run

    loaded = load_run(run)
    paths = render_report(loaded, out or Path("reports") / loaded.run_id)
    console.print(f"report: {paths.html} (Markdown: {paths.markdown})")


@app.command(cls=Command)
def targets() -> None:
    """List the target kinds and transforms a scenario can use."""
    table = Table("kind", "input", "clients (first is the default)", "shapes", "description")
    for kind in TARGET_KINDS.values():
        table.add_row(
            kind.name, kind.source, ", ".join(kind.allowed_clients), ", ".join(kind.shapes) or "-", kind.description
        )
    console.print(table)
    console.print(f"transforms: {', '.join(TRANSFORMS)}")


@app.command(cls=Command)
def compare(
    runs: Annotated[list[Path], typer.Argument(help="baseline run directory, then one or more candidate runs")],
    threshold: Annotated[str, typer.Option(help="smallest p50 change that counts (p95: twice)")] = "15%",
    html_dir: Annotated[Path | None, typer.Option("--html", help="also write compare.html (overlaid CDFs)")] = None,
    markdown: Annotated[Path | None, typer.Option(help="also write the comparison as Markdown to this file")] = None,
) -> None:
    """Per case: p50 / p95 change with a 99% CI and a verdict; exit 1 if a case got worse, broke or is missing."""
    from bench.compare import compare_runs, parse_threshold
    from bench.report.compare_html import render_comparison_html
    from bench.report.markdown import comparison_table
    from bench.report.text import comparison_table as comparison_text
    from bench.store import atomic_write_bytes, load_run

    if len(runs) < 2:
        raise UsageError("compare needs a baseline run and at least one candidate run")
    limit = parse_threshold(threshold)
    baseline = load_run(runs[0])
    failing = False
    sections = []
    for path in runs[1:]:
        candidate = load_run(path)
        comparisons = compare_runs(baseline, candidate, limit)
        failing = failing or any(c.gates for c in comparisons)
        console.print(comparison_text(comparisons, f"{baseline.run_id} → {candidate.run_id}"))
        sections.append(comparison_table(comparisons, baseline.run_id, candidate.run_id, limit))
        if html_dir is not None:
            page = render_comparison_html(baseline, candidate, comparisons, html_dir / candidate.run_id)
            console.print(f"comparison: {page}")
    if markdown is not None:
        atomic_write_bytes(markdown, ("\n\n".join(sections) + "\n").encode())
    raise typer.Exit(1 if failing else 0)


@app.command(cls=Command)
def check(
    run: Annotated[Path, typer.Argument(help="run directory to check")],
    baseline: Annotated[Path, typer.Option(help="baseline run directory or exported baseline file")],
    threshold: Annotated[str, typer.Option(help="smallest p50 slowdown that counts (p95: twice)")] = "15%",
    markdown: Annotated[Path | None, typer.Option(help="also write the result as Markdown to this file")] = None,
) -> None:
    """Exit 1 when a baseline case got slower, broke or is missing (Markdown also to $GITHUB_STEP_SUMMARY)."""
    from bench.compare import parse_threshold
    from bench.gate import check_run
    from bench.report.cells import gate_rule
    from bench.report.text import comparison_table

    limit = parse_threshold(threshold)
    result = check_run(run, baseline, limit)
    _print_gate(result, markdown)
    console.print(comparison_table(result.comparisons, f"{baseline} → {run}"))
    console.print(gate_rule(limit), style="dim", markup=False, highlight=False)
    raise typer.Exit(result.exit_code)


@app.command(cls=Command)
def validate(
    run: Annotated[Path, typer.Argument(help="run directory whose scenario has [[claims]]")],
    markdown: Annotated[Path | None, typer.Option(help="also write the result as Markdown to this file")] = None,
) -> None:
    """Evaluate the scenario's claims: pass / fail / inconclusive with CIs; exit 1 if one fails."""
    from bench.gate import validate_run
    from bench.report.text import claims_table

    result = validate_run(run)
    _print_gate(result, markdown)
    if result.verdicts:
        console.print(claims_table(result.verdicts))
    raise typer.Exit(result.exit_code)


def _print_gate(result: Any, markdown: Path | None) -> None:
    from bench.store import atomic_write_bytes

    console.print(
        result.headline, style="bold red" if result.exit_code else "bold green", markup=False, highlight=False
    )
    if markdown is not None:
        atomic_write_bytes(markdown, result.markdown.encode())


@app.command(cls=Command)
def export(
    run: Annotated[Path, typer.Argument(help="run directory")],
    fmt: Annotated[str, typer.Option("--format", help="one of: " + ", ".join(EXPORT_FORMATS))],
    out: Annotated[Path | None, typer.Option("--out", help="output file (default inside the run directory)")] = None,
) -> None:
    """Write the run in a format another tool reads."""
    from bench.export import export_run
    from bench.store import load_run

    console.print(f"wrote {export_run(load_run(run), fmt, out)}")


FIDELITY_KINDS = ("gradio-stream", "gradio-hls", "fastrtc-webrtc")
STORE = Path("fidelity")  # bench.fidelity_store.DEFAULT_DIR, not imported: --help stays quick


@app.command(cls=Command)
def fidelity(
    kind: Annotated[
        str, typer.Option(help=f"the app Chromium and our client play: {' or '.join(FIDELITY_KINDS)}")
    ] = "gradio-stream",
    stream_every: Annotated[
        float | None, typer.Option(help="gradio-stream: the app's stream_every, s (default 0.1)", min=0.01)
    ] = None,
    media_format: Annotated[
        str | None, typer.Option(help="gradio-hls: chunk container, ts or mp4 (default ts)")
    ] = None,
    chunk_s: Annotated[
        float | None, typer.Option(help="gradio-hls: seconds of video per chunk (default 1)", min=0.1)
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            help="seconds each client streams; gradio-hls: seconds of stream compared (default 12; gradio-hls 14)",
            min=4,
        ),
    ] = None,
    warmup: Annotated[
        float | None, typer.Option(help="gradio-stream: seconds left out at the start (default 3)", min=0)
    ] = None,
    tolerance: Annotated[str, typer.Option(help="largest client / browser difference that agrees")] = "15%",
    control: Annotated[
        bool | None,
        typer.Option(
            "--control/--no-control", help="gradio-stream: also measure our client beside an idle Chromium (default on)"
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="results folder (default runs/<time>-fidelity)")] = None,
    store: Annotated[Path, typer.Option("--store", help="where <kind>.json keeps the result reports cite")] = STORE,
) -> None:
    """Play our target in headless Chromium (the framework's own page), then with our client; exit 1 if they differ."""
    from bench.compare import parse_threshold
    from bench.store import new_run_dir

    if kind not in FIDELITY_KINDS:
        raise UsageError(f"--kind {kind!r}: expected {' or '.join(FIDELITY_KINDS)}")
    other_kinds = {
        "gradio-stream": {"--media-format": media_format, "--chunk-s": chunk_s},
        "gradio-hls": {"--stream-every": stream_every, "--warmup": warmup, "--control": control},
        "fastrtc-webrtc": {
            "--stream-every": stream_every,
            "--media-format": media_format,
            "--chunk-s": chunk_s,
            "--control": control,
        },
    }
    misplaced = [name for name, value in other_kinds[kind].items() if value is not None]
    if misplaced:
        raise UsageError(f"{', '.join(misplaced)} does not apply to --kind {kind}")
    if media_format not in (None, "ts", "mp4"):
        raise UsageError(f"--media-format {media_format!r}: expected ts or mp4")
    limit = parse_threshold(tolerance, "--tolerance")
    if kind == "gradio-hls":
        _fidelity_hls(media_format or "ts", chunk_s or 1.0, duration or 14.0, limit, out, store)
    duration, warmup = duration or 12.0, 3.0 if warmup is None else warmup
    if warmup >= duration:
        raise UsageError(f"--warmup ({warmup}) must be shorter than --duration ({duration})")
    if kind == "fastrtc-webrtc":
        _fidelity_webrtc(duration, warmup, limit, out, store)
    from bench.fidelity import run_fidelity

    stream_every = stream_every or 0.1
    folder = out or new_run_dir(Path("runs"), "fidelity")
    with console.status("Chromium, then our client, against one gradio-stream app…"):
        result = run_fidelity(folder, stream_every, duration, warmup, tolerance=limit, control=control is not False)
    table = Table(title=f"fidelity at stream_every {stream_every} s (agree: within {limit:.0%})")
    for column in ("metric", "Chromium", "our client", "client / browser", "agrees", "client beside idle Chromium"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in result.agreements:
        beside = getattr(result.client_beside_browser, row.metric) if result.client_beside_browser else None
        cells = [f"{v:.1f}" if v is not None else "-" for v in (row.browser, row.client, beside)]
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        table.add_row(row.metric, *cells[:2], ratio, "yes" if row.agrees else "NO", cells[2])
    console.print(table)
    sides = (("Chromium", result.browser), ("our client", result.client), ("beside idle", result.client_beside_browser))
    for name, metrics in sides:
        if metrics is None:
            continue
        stages = ", ".join(f"{k} {v:.1f}" for k, v in metrics.stages_ms.items())
        console.print(f"{name}: {metrics.sent} sent, {metrics.shown} shown; median stages (ms): {stages or '-'}")
    console.print(f"wrote {folder / 'fidelity.json'}")
    settings = {"stream_every": stream_every, "duration_s": duration, "warmup_s": warmup}
    rows = [(a.metric, a.browser, a.client, a.agrees) for a in result.agreements]
    _store_fidelity("gradio-stream", rows, limit, settings, store)
    raise typer.Exit(0 if result.agrees else 1)


def _store_fidelity(
    kind: str,
    rows: list[tuple[str, float | None, float | None, bool]],
    limit: float,
    settings: dict[str, Any],
    store: Path,
) -> None:
    """Keep the result where every later report of a `kind` case finds it (bench.fidelity_store)."""
    from bench.browser import chromium_version
    from bench.fidelity_store import measured, save

    path = save(store, measured(kind, rows, limit, settings, chromium_version()))
    console.print(f"stored {path}: reports of {kind} cases by our client cite it")


def _fidelity_webrtc(duration: float, warmup: float, limit: float, out: Path | None, store: Path) -> None:
    """`bench fidelity --kind fastrtc-webrtc`: Chromium and our WebRTC client on one FastRTC app; exit 1 if they
    differ."""
    from bench.fidelity_webrtc import run_webrtc_fidelity
    from bench.store import new_run_dir

    folder = out or new_run_dir(Path("runs"), "fidelity")
    with console.status("Chromium, then our WebRTC client, against one fastrtc-webrtc app (flip)…"):
        result = run_webrtc_fidelity(folder, duration, warmup, tolerance=limit)
    table = Table(title=f"fidelity of our WebRTC client, FastRTC flip (agree: within {limit:.0%})")
    for column in ("metric", "Chromium", "our client", "Chromium / ours", "agrees"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in result.agreements:
        digits = 3 if row.metric == "delivered_ratio" else 1
        cells = ["-" if v is None else f"{v:.{digits}f}" for v in (row.browser, row.client)]
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        table.add_row(row.metric, *cells, ratio, "yes" if row.agrees else "NO")
    console.print(table)
    for name, side in (("Chromium", result.browser), ("our client", result.client)):
        console.print(f"{name}: case {side.status}, {side.n} frames, lost {side.lost_ratio or 0:.1%}")
    details = result.browser.details
    stages = [f"{k} {v:.1f}" for k, v in details.items() if isinstance(v, float)]
    stages += [f"{k} {v['p50']:.1f} / {v['p95']:.1f}" for k, v in details.items() if isinstance(v, dict) and v["n"]]
    console.print("Chromium's own accounting, ms (p50 / p95 where pooled): " + ", ".join(stages))
    load = result.load_average
    console.print(f"load average (1 min) {load['before'][0]:.2f} before, {load['after'][0]:.2f} after")
    console.print(f"wrote {folder / 'fidelity.json'}")
    rows = [(a.metric, a.browser, a.client, a.agrees) for a in result.agreements]
    _store_fidelity("fastrtc-webrtc", rows, limit, {"duration_s": duration, "warmup_s": warmup}, store)
    raise typer.Exit(0 if result.agrees else 1)


def _fidelity_hls(
    media_format: str, chunk_s: float, duration: float, limit: float, out: Path | None, store: Path
) -> None:
    """`bench fidelity --kind gradio-hls`: Chromium and our player model on the same stream; exit 1 if they differ."""
    from bench.fidelity_hls import run_hls_fidelity
    from bench.store import new_run_dir

    folder = out or new_run_dir(Path("runs"), "fidelity")
    with console.status("Chromium, then our HLS client, each on its own launch of the gradio-hls app…"):
        result = run_hls_fidelity(folder, media_format, chunk_s, duration, limit)
    title = f"fidelity of the HLS player model, {media_format} chunks of {chunk_s:g} s (agree: within {limit:.0%})"
    table = Table(title=title)
    columns = ("metric", "Chromium", "model", "model / browser", "agrees", "model on the page's loads", "ratio")
    for column in columns:
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row, same in zip(result.agreements, result.agreements_on_page_loads, strict=True):
        cells = [f"{v:.2f}" if isinstance(v, float) else "-" if v is None else str(v) for v in
                 (row.browser, row.model, same.model)]  # fmt: skip
        ratios = [f"{r.ratio:.2f}" if r.ratio is not None else "-" for r in (row, same)]
        table.add_row(row.metric, *cells[:2], ratios[0], "yes" if row.agrees else "NO", cells[2], ratios[1])
    console.print(table)
    delay, reloads, facts = result.presentation_delay_ms, result.reload_error_ms, result.browser_facts
    if facts.first_load_after_url_ms is not None:
        console.print(
            f"hls.js loaded its playlist first {facts.first_load_after_url_ms:.0f} ms after the page read the queue "
            "message with its URL (our client reads it at once); this sets the phase of every reload"
        )
    if reloads["p50"] is not None:
        console.print(
            f"hls.js reloaded its playlist {reloads['p50']:.0f} ms (p50, max {reloads['max']:.0f}) from the model's "
            f"schedule; {facts.playlist_misses} of its {len(facts.playlist_loads_s)} loads found nothing new"
        )
    if delay["p50"] is not None:
        console.print(
            f"Chromium presented frames {delay['p50']:.0f} / {delay['p95']:.0f} ms (p50 / p95) later than the model "
            "told of segments by its own loads: its demux, decode and render"
        )
    if not result.agrees and result.agrees_on_page_loads:
        console.print(
            "told what the page knew, the model plays like it on every metric: the differences between the runs are "
            "their timelines' (the reload phase, the app's first chunk), not the player model's"
        )
    console.print(
        f"Chromium: {facts.callbacks} frames timed, {facts.undecoded} markers unread, {facts.unknown_ids} wrong IDs, "
        f"{facts.waiting_events} 'waiting' events after it first played"
    )
    load = result.load_average
    console.print(f"load average (1 min) {load['before'][0]:.2f} before, {load['after'][0]:.2f} after")
    console.print(f"wrote {folder / 'fidelity.json'}")
    rows = [(a.metric, a.browser, a.model, a.agrees) for a in result.agreements]
    settings = {"media_format": media_format, "chunk_s": chunk_s, "duration_s": duration}
    _store_fidelity("gradio-hls", rows, limit, settings, store)
    raise typer.Exit(0 if result.agrees else 1)


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"{summary['scenario']} ({summary['status']})")
    for column in ("case", "status", "n", "p50 ms", "p95 ms [95% CI]", "event p50", "fps", "lost", "growth ms/s"):
        table.add_column(column, justify="left" if column in ("case", "status") else "right")
    for case in summary["cases"]:
        latency = case.get("latency_ms") or {}
        event = case.get("event_latency_ms") or {}
        growth = case.get("growth_ms_per_s")
        table.add_row(
            case["case"],
            case["status"],
            str(case["n"]),
            f"{latency['p50']:.1f}" if latency else "-",
            f"{latency['p95']:.1f} [{latency['p95_ci'][0]:.1f}, {latency['p95_ci'][1]:.1f}]" if latency else "-",
            f"{event['p50']:.1f}" if event else "-",
            f"{case['fps']:.1f}",
            f"{case['lost_ratio']:.1%}",
            f"{growth:+.1f}" if growth is not None else "-",
        )
    return table


def main() -> None:
    """Entry point: any BenchError becomes one line on stderr and its exit code, never a traceback."""
    try:
        app()
    except BenchError as exc:
        errors.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
