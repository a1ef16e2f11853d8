"""Our Gradio client against a real browser: headless Chromium running Gradio's own frontend, same app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.browser import BrowserEvent, BrowserTrace, write_y4m
from bench.catalog import TARGET_KINDS
from bench.fidelity import browser_metrics, client_beside_browser, stream_metrics
from bench.launcher import TargetCommand, launch
from bench.runner import run_scenario
from bench.scenario import Scenario, Source, TargetSpec
from bench.store import load_run
from tests.conftest import processes_with_token, run_cli

needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (.ci/run installs it)")


def test_metrics_match_each_output_with_the_latest_send_of_its_frame():
    sends = [BrowserEvent(0.0, 1), BrowserEvent(0.1, 2), BrowserEvent(0.2, 1), BrowserEvent(0.3, None)]
    shows = [BrowserEvent(0.06, 1, 0.05), BrowserEvent(0.17, 2, 0.15), BrowserEvent(0.28, 1, 0.25)]
    metrics = browser_metrics(BrowserTrace(sends, shows), warmup_s=0.0)
    assert metrics.sent == 4 and metrics.shown == 3
    assert metrics.send_interval_ms == pytest.approx(100)
    # 60, 70 and 80 ms: the third output shows the second send of frame 1, not the first
    assert metrics.sent_to_shown_ms == pytest.approx(70)
    assert metrics.stages_ms["send_to_event_ms"] == pytest.approx(50)
    assert metrics.shown_per_s == pytest.approx(2 / 0.22)


def test_warmup_and_unmatched_outputs_are_left_out():
    metrics = stream_metrics([0.0, 1.0, 2.0, 3.0], [(0.5, 0.0), (2.5, 2.0), (3.5, None)], since_s=1.0)
    assert metrics.sent == 3 and metrics.shown == 2
    assert metrics.sent_to_shown_ms == pytest.approx(500)


@pytest.mark.slow
@needs_chromium
def test_chromium_and_our_client_agree_on_the_same_app(tmp_path: Path, process_token: str):
    # the control run is left out here; the slot test below runs our client beside a Chromium
    args = ("--duration", "8", "--warmup", "2", "--no-control", "--out", str(tmp_path), "--store", str(tmp_path))
    result = run_cli("fidelity", *args, timeout=300)
    assert result.returncode in (0, 1), result.stderr
    assert "sent_to_shown_ms" in result.stdout and "Chromium" in result.stdout
    measured = json.loads((tmp_path / "fidelity.json").read_text())
    browser, client = measured["browser"], measured["client"]
    # both really streamed (about 60 frames sent in the 6 s measured) and their outputs were decoded; how many the
    # server showed and how fast depends on the machine's load, so only BENCHMARKS.md's quiet runs judge agreement
    for side in (browser, client):
        assert side["sent"] >= 40 and side["shown"] >= side["sent"] / 3, side
    rows = {row["metric"]: row for row in measured["agreements"]}
    assert rows["send_interval_ms"]["agrees"], rows  # both follow the app's stream_every timer
    assert 0.25 < rows["sent_to_shown_ms"]["ratio"] < 2, rows
    assert measured["client_beside_browser"] is None
    assert json.loads((tmp_path / "gradio-stream.json").read_text())["client"] == "gradio-stream", "kept for reports"
    assert measured["agrees"] == (result.returncode == 0)
    assert not processes_with_token(process_token), "neither Chromium nor the app outlives the command"


@pytest.mark.slow
@needs_chromium
def test_a_stream_stopped_in_the_browser_keeps_its_slot_and_ours_does_not(tmp_path: Path):
    """Gradio's default concurrency_limit is 1 and a stopped stream waits 30 s for input (BENCHMARKS.md, Findings)."""
    camera = tmp_path / "camera.y4m"
    write_y4m(camera, 320, 240, 30, 300)
    kind = TARGET_KINDS["gradio-stream"]
    with launch(TargetCommand(kind.argv({}), kind.ready_path), tmp_path / "app.log") as app:
        scenario = Scenario(
            name="slot",
            duration_s=3,
            warmup_s=1,
            source=Source(width=320, height=240),
            targets=[TargetSpec(kind="gradio-stream", url=app.url)],
        )
        ours = [run_scenario(scenario, tmp_path / "s.toml", tmp_path / "runs").summary["cases"][0] for _ in range(2)]
        longer = scenario.model_copy(update={"duration_s": 7})
        after_browser = load_run(client_beside_browser(app.url, camera, tmp_path / "browser", longer, 2.0))
    assert [c["status"] for c in ours] == ["ok", "ok"], "our client frees its slot when it leaves"
    assert ours[1]["sessions"][0]["phases_ms"]["queue_wait_ms"] < 2000
    (session,) = after_browser.summary["cases"][0]["sessions"]
    assert session["status"] == "failed" and "never started" in session["error"], session
    assert session["phases_ms"]["queue_wait_ms"] > 6000


def test_without_chromium_fidelity_says_so_in_one_line(tmp_path: Path):
    result = run_cli("fidelity", "--out", str(tmp_path / "f"), env={"PATH": str(tmp_path)})
    assert result.returncode == 2 and "chromium not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "f").exists()
