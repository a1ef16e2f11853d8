"""Our HLS player model against a real browser: headless Chromium playing the gradio-hls app through Gradio's page."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bench.fidelity_hls import PlayerMetrics, Shown, agreements, player_metrics
from tests.conftest import processes_with_token, run_cli


def test_a_frozen_playhead_is_a_rebuffer_and_a_dropped_frame_is_not():
    # 10 fps made; shown at real time from 1.0 s, frames 3..5 never shown (dropped), frame 6 onward 0.5 s late
    made = {i: i / 10 for i in range(10)}
    shown_at = {0: 1.0, 1: 1.1, 2: 1.2, 6: 2.1, 7: 2.2, 8: 2.3, 9: 2.4}
    metrics = player_metrics([Shown(i, made[i], t) for i, t in shown_at.items()], first_frame_ms=500.0, url_ms=300.0)
    assert (metrics.rebuffers, metrics.stalled_s) == (1, pytest.approx(0.5))
    assert metrics.first_frame_after_url_ms == pytest.approx(200)  # the player's share of the first frame
    assert metrics.glass_to_glass_p50_ms == pytest.approx(1500)
    # 6 frames after the first, over 1.4 s of which 0.5 s was stalled
    assert metrics.presented_per_s == pytest.approx(6 / 0.9)
    dropped = player_metrics([Shown(i, made[i], 1.0 + i / 10) for i in (0, 1, 2, 6, 7)], None)
    assert (dropped.rebuffers, dropped.stalled_s) == (0, 0.0)


def test_a_count_of_zero_agrees_only_with_zero():
    quiet = PlayerMetrics(1000.0, 1100.0, 300.0, 200.0, rebuffers=0, stalled_s=0.0, presented_per_s=30.0, timed=100)
    rows = {a.metric: a for a in agreements(quiet, quiet, 0.15)}
    assert rows["rebuffers"].agrees and rows["rebuffers"].ratio is None
    stalled = replace(quiet, rebuffers=1, stalled_s=0.5)
    rows = {a.metric: a for a in agreements(quiet, stalled, 0.15)}
    assert not rows["rebuffers"].agrees and rows["glass_to_glass_p50_ms"].agrees


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (.ci/run installs it)")
def test_chromium_and_the_player_model_both_play_the_stream(tmp_path: Path, process_token: str):
    folders = ("--out", str(tmp_path), "--store", str(tmp_path))
    args = ("--kind", "gradio-hls", "--chunk-s", "0.5", "--duration", "6", *folders)
    result = run_cli("fidelity", *args, timeout=150)
    assert result.returncode in (0, 1), result.stderr
    assert "glass_to_glass_p50_ms" in result.stdout and "Chromium" in result.stdout
    measured = json.loads((tmp_path / "fidelity.json").read_text())
    facts = measured["browser_facts"]
    # the page presented frames and their markers were read; the checksum lets no wrong ID through
    assert facts["callbacks"] > 0 and facts["unknown_ids"] == 0, facts
    # 6 s of a 30 fps stream is 180 frames; a loaded 2-core machine drops some callbacks, never most
    for side in ("browser", "model", "model_on_page_loads"):
        assert measured[side]["timed"] >= 60 and measured[side]["first_frame_ms"] > 0, (side, measured[side])
    assert len(measured["agreements"]) == 7
    assert all(row["browser"] is not None and row["model"] is not None for row in measured["agreements"])
    assert measured["agrees"] == (result.returncode == 0)
    assert json.loads((tmp_path / "gradio-hls.json").read_text())["client"] == "hls", "kept for reports"
    assert not processes_with_token(process_token), "neither Chromium nor an app outlives the command"


def test_hls_fidelity_refuses_the_other_modes_options_and_a_missing_chromium_in_one_line(tmp_path: Path):
    refused = run_cli("fidelity", "--kind", "gradio-hls", "--warmup", "2", "--out", str(tmp_path / "a"))
    assert refused.returncode == 2 and "--warmup does not apply to --kind gradio-hls" in refused.stderr
    no_browser = run_cli("fidelity", "--kind", "gradio-hls", "--out", str(tmp_path / "b"), env={"PATH": str(tmp_path)})
    assert no_browser.returncode == 2 and "chromium not found" in no_browser.stderr
    for result in (refused, no_browser):
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
