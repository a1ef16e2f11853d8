"""Reports from a run directory: summary.md for PRs and CI, index.html with plots."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from bench.catalog import TARGET_KINDS, TargetKind
from bench.claims import evaluate_claims
from bench.headline import run_findings, swept_params
from bench.report import html, plots
from bench.report.markdown import run_summary
from bench.store import RunData, atomic_write_bytes

VIDEO = TargetKind("", "", client="")  # a case of a kind this version does not know: read as video
PLOT_FILES = {
    "latency_cdf": "Latency CDF per case",
    "latency_over_time": "Latency over time",
    "breakdown": "Per-frame stages and session set-up (where a transport reports them)",
    "delivery": "Output fps, losses and rejected sessions",
    "output_timeline": "Output streams, audio and voice: when each item was shown, stalls in red",
}


@dataclass
class ReportPaths:
    directory: Path
    markdown: Path
    html: Path
    plots: list[Path]


def render_report(run: RunData, out_dir: Path) -> ReportPaths:
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = run.summary.get("cases", [])
    verdicts = evaluate_claims(run)
    findings = run_findings(run, verdicts)
    environment = run.run.get("environment", {})
    markdown = run_summary(run.summary, findings, verdicts, environment)
    figures: dict[str, bytes | None] = {}
    for param in swept_params(cases):
        figures[f"targets_by_{param}"] = plots.targets_by_param(cases, param)
        figures[f"latency_vs_{param}"] = plots.latency_vs_param(cases, param)
    if len(run.samples):
        names = [c["case"] for c in cases]
        figures["latency_cdf"] = plots.latency_cdf(run.samples, names)
        figures["latency_over_time"] = plots.latency_over_time(run.samples, names)
        figures["breakdown"] = plots.breakdown(run.samples, cases)
        streams = [c["case"] for c in cases if TARGET_KINDS.get(c.get("kind", ""), VIDEO).source != "video"]
        figures["output_timeline"] = plots.output_timeline(run.samples, streams) if streams else None
        for case in (c["case"] for c in cases if TARGET_KINDS.get(c.get("kind", ""), VIDEO).source == "speech"):
            figures[f"voice_turns:{case}"] = plots.voice_turns(run.samples, case, _speech_waveform)
    figures["delivery"] = plots.delivery(cases)
    written = []
    status = escape(str(run.summary.get("status")))
    body = [
        f'<p class="meta">Run <code>{escape(run.run_id)}</code>, status <b>{status}</b>, {len(cases)} cases.</p>',
        html.findings_block(findings),
        "<h2>Cases</h2>",
        "<p>Content latency = output available to the client minus the capture of what it shows (a camera "
        "frame, a microphone marker, the end of a spoken turn, or an item's yield in the app); event latency = "
        "capture until the first output showing that sample or a later one.</p>",
        html.cases_table(cases),
        html.stream_metrics_block(cases),
        html.claims_block(verdicts),
        html.notes_block(cases),
        html.load_block(cases),
        "<h2>Plots</h2>",
    ]
    for name, png in figures.items():
        if png is None:
            continue
        path = out_dir / f"{re.sub(r'[^A-Za-z0-9_.=-]+', '_', name)}.png"
        atomic_write_bytes(path, png)
        written.append(path)
        body.append(html.image(_title(name), png))
    body.append(html.environment_block(environment))
    markdown_path = out_dir / "summary.md"
    html_path = out_dir / "index.html"
    atomic_write_bytes(markdown_path, markdown.encode())
    atomic_write_bytes(html_path, html.page(f"streambench: {run.summary.get('scenario')}", body).encode())
    return ReportPaths(out_dir, markdown_path, html_path, written)


def _speech_waveform(start_s: float, end_s: float) -> tuple[Any, int]:
    """The speech the voice client played over a span of the run (the microphone is deterministic)."""
    from bench.media.microphone import SpeechMicrophone

    microphone = SpeechMicrophone()
    first = round(start_s * microphone.sample_rate)
    return microphone.pcm(first, round(end_s * microphone.sample_rate) - first), microphone.sample_rate


def _title(figure: str) -> str:
    if figure.startswith("voice_turns:"):
        return f"Voice turns: {figure.removeprefix('voice_turns:')}"
    if figure.startswith("targets_by_"):
        return f"Targets side by side across {figure.removeprefix('targets_by_')}: content p50 with its 95 % CI band"
    if figure.startswith("latency_vs_"):
        return (
            f"Latency vs {figure.removeprefix('latency_vs_')}: content p50 and p95 with 95 % CI bands, "
            "event-to-display p50, output fps"
        )
    return PLOT_FILES[figure]
