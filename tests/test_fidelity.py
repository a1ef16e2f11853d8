"""Our Gradio client against a real browser: headless Chromium running Gradio's own frontend, same app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.browser import BrowserEvent, BrowserTrace
from bench.fidelity import browser_metrics, stream_metrics
from tests.conftest import processes_with_token, run_cli


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
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (.ci/run installs it)")
def test_chromium_and_our_client_agree_on_the_same_app(tmp_path: Path, process_token: str):
    result = run_cli("fidelity", "--duration", "8", "--warmup", "2", "--out", str(tmp_path), timeout=300)
    assert result.returncode in (0, 1), result.stderr
    assert "sent_to_shown_ms" in result.stdout and "Chromium" in result.stdout
    measured = json.loads((tmp_path / "fidelity.json").read_text())
    browser, client = measured["browser"], measured["client"]
    # both really streamed: about 60 frames sent in 6 s at stream_every 0.1, nearly all shown and decoded
    for side in (browser, client):
        assert side["sent"] >= 45 and side["shown"] >= 0.8 * side["sent"], side
    rows = {row["metric"]: row for row in measured["agreements"]}
    assert rows["send_interval_ms"]["agrees"] and rows["shown_per_s"]["agrees"], rows
    # sent-to-shown is reported, not gated here: Chromium adds its own work on a shared 2-core machine (BENCHMARKS.md)
    assert 0.4 < rows["sent_to_shown_ms"]["ratio"] < 1.6, rows
    assert measured["agrees"] == (result.returncode == 0)
    assert not processes_with_token(process_token), "neither Chromium nor the app outlives the command"
