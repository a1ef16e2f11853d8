"""Reports of a synthetic run (no servers, so part of the quick loop): the answer first, a sweep as curves, no
empty panels, each note once."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bench.report import plots, render_report
from tests.test_headline import case, jittery, synthetic_run

HOLD_NOTE = "includes one frame interval that the receiver holds each frame"


def sweep_run():
    cases = [case("app/flip", jittery(50, seed=1), jittery(50, seed=1), notes=[HOLD_NOTE])]
    for index, every in enumerate((0.05, 0.1, 1.0)):
        content = jittery(70, seed=10 + index)
        cases.append(
            case(
                f"gradio/flip/stream_every={every}",
                content,
                content + every * 500,
                {"stream_every": every},
                fps=1 / every,
                notes=[HOLD_NOTE, "<b>gradio</b> drops frames"],
            )
        )
    return synthetic_run(*cases, reference="app")


def test_the_report_leads_with_the_answer(tmp_path: Path):
    paths = render_report(sweep_run(), tmp_path)
    page = paths.html.read_text()
    section = page[page.index("What this run says") : page.index("<table>")]
    assert "app/flip (the reference) is the fastest flip case" in section
    assert "gradio: stream_every 0.05 gives the lowest event-to-display p50" in section
    text = paths.markdown.read_text()
    assert (
        text.index("### What this run says")
        < text.index("app/flip (the reference) is the fastest")
        < text.index("| case | status |")
    )


def test_a_sweep_is_drawn_as_curves_and_empty_panels_are_left_out(tmp_path: Path):
    paths = render_report(sweep_run(), tmp_path)
    names = {p.stem for p in paths.plots}
    assert {"latency_vs_stream_every", "latency_cdf", "latency_over_time", "delivery"} <= names
    assert "breakdown" not in names, "no per-frame stages and no set-up phases: no figure at all"


def test_each_note_is_shown_once_with_its_cases(tmp_path: Path):
    paths = render_report(sweep_run(), tmp_path)
    page, text = paths.html.read_text(), paths.markdown.read_text()
    assert page.count(HOLD_NOTE) == 1 and text.count(HOLD_NOTE) == 1
    assert "<b>all cases</b>: " + HOLD_NOTE in page
    assert "gradio/flip/stream_every=0.05, gradio/flip/stream_every=0.1, gradio/flip/stream_every=1.0</b>" in page
    assert "&lt;b&gt;gradio&lt;/b&gt; drops frames" in page and "<b>gradio</b>" not in page


def test_losses_get_a_panel_only_when_there_are_some():
    run = sweep_run()
    cases = run.summary["cases"]
    without = cv2.imdecode(np.frombuffer(plots.delivery(cases), np.uint8), cv2.IMREAD_COLOR)
    lossy = [c | {"lost_ratio": 0.2} for c in cases]
    with_losses = cv2.imdecode(np.frombuffer(plots.delivery(lossy), np.uint8), cv2.IMREAD_COLOR)
    assert without.shape[1] < with_losses.shape[1], "a second panel (lost frames) appears only with losses"


def test_set_up_phases_alone_make_a_one_panel_breakdown():
    run = sweep_run()
    cases = [c | {"setup_ms": {"offer_ms": 10.0, "first_frame_ms": 90.0}} for c in run.summary["cases"]]
    png = plots.breakdown(run.samples, cases)
    assert png is not None
    alone = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    staged = run.samples.assign(stage_fetch_ms=5.0)
    both = cv2.imdecode(np.frombuffer(plots.breakdown(staged, cases), np.uint8), cv2.IMREAD_COLOR)
    assert alone.shape[1] < both.shape[1]


def test_a_sweep_whose_cases_all_failed_draws_no_curve(tmp_path: Path):
    run = sweep_run()
    for summary in run.summary["cases"][1:]:
        summary.update(status="failed", latency_ms=None, event_latency_ms=None, error="connection refused")
    run.samples = run.samples[run.samples["case"] == "app/flip"]
    paths = render_report(run, tmp_path)
    assert "latency_vs_stream_every" not in {p.stem for p in paths.plots}
    assert "gradio/flip/stream_every=0.05 failed: connection refused" in paths.markdown.read_text()


def test_two_targets_swept_over_named_networks_share_one_plot(tmp_path: Path):
    """The RTT sweep: every target that sweeps `network` on one axis, named values in scenario order."""
    cases = []
    for target, base in (("webrtc", 50), ("gradio", 60)):
        for added, network in ((0, "none"), (100, "rtt-100")):
            latencies = jittery(base + added * (1 if target == "webrtc" else 2), seed=base + added)
            cases.append(case(f"{target}/flip/network={network}", latencies, latencies, {"network": network}))
    names = {p.stem for p in render_report(synthetic_run(*cases), tmp_path).plots}
    assert {"targets_by_network", "latency_vs_network"} <= names
    one_target = synthetic_run(*[c for c in cases if c[0]["case"].startswith("gradio")])
    assert "targets_by_network" not in {p.stem for p in render_report(one_target, tmp_path / "one").plots}


def test_a_one_second_freeze_in_a_steady_stream_is_the_one_stall_found():
    rng = np.random.default_rng(7)
    times = np.cumsum(0.1 + rng.uniform(-0.02, 0.02, 60))
    times[30:] += 1.0  # the player froze for a second before item 30
    assert plots.stall_spans(times) == [(times[29], times[30])]
    assert plots.stall_spans(np.arange(50) * 0.1) == [], "an even stream has no stall"


def hls_run():
    made = case("hls-video/identity/chunk_s=1", jittery(900, seed=4), kind="gradio-hls")
    summary, samples = made
    samples["recv_s"] = samples["capture_s"] + samples["latency_ms"] / 1000
    samples.loc[samples.index >= 60, "recv_s"] += 2.0  # a 2 s rebuffer
    summary["stream_metrics"] = {
        "glass_to_glass_ms[hls.js default]": {"n": 90, "p50": 3339.0, "p95": 3500.0, "max": 3600.0},
        "rebuffers[hls.js default]": 1,
    }
    return synthetic_run((summary, samples))


def test_output_streams_get_their_metrics_table_and_a_timeline(tmp_path: Path):
    paths = render_report(hls_run(), tmp_path)
    page, text = paths.html.read_text(), paths.markdown.read_text()
    assert "output_timeline" in {p.stem for p in paths.plots}
    for rendered in (page, text):
        assert "Output streams, audio and voice turns" in rendered
        assert "glass_to_glass_ms[hls.js default]" in rendered and "3339.0" in rendered
    timeline = cv2.imread(str(tmp_path / "output_timeline.png"))
    red = (timeline[:, :, 2] > 150) & (timeline[:, :, 1] < 100) & (timeline[:, :, 0] < 100)
    assert red.any(), "the rebuffer is drawn in red on the timeline"
