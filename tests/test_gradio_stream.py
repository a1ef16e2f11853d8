"""Gradio `.stream()` measured the way a browser drives it, against real Gradio servers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.launcher import TargetCommand, launch
from bench.runner import run_scenario
from bench.scenario import load_scenario

APPS = Path(__file__).parent / "apps"

# end-to-end runs of real servers: part of the full suite, left out of the quick `-m "not slow"` loop
pytestmark = pytest.mark.slow


def run(tmp_path: Path, body: str, name: str = "gradio") -> dict:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\n' + body)
    scenario, resolved = load_scenario(path)
    return run_scenario(scenario, resolved, tmp_path / "runs").summary


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> dict:
    body = (
        "duration_s = 6\nwarmup_s = 2\n[source]\nwidth = 320\nheight = 240\n"
        '[[targets]]\nkind = "gradio-stream"\ntransform = "flip"\nstream_every = [0.1, 0.5]\n'
    )
    return run(tmp_path_factory.mktemp("sweep"), body)


def case(summary: dict, stream_every: float) -> dict:
    return next(c for c in summary["cases"] if c["params"]["stream_every"] == stream_every)


def test_output_rate_follows_stream_every(sweep: dict):
    for stream_every in (0.1, 0.5):
        measured = case(sweep, stream_every)
        assert measured["status"] == "ok" and measured["n"] > 0
        # the server sustains far more than 10 fps of flip at 320x240, so the timer sets the rate (+-15 %)
        assert measured["fps"] == pytest.approx(1 / stream_every, rel=0.15)


def test_event_latency_grows_with_stream_every_while_content_latency_stays_flat(sweep: dict):
    fast, slow = case(sweep, 0.1), case(sweep, 0.5)
    # waiting for the next capture tick costs about stream_every / 2 on average: 0.2 s more at 0.5 than at 0.1
    event_delta = slow["event_latency_ms"]["p50"] - fast["event_latency_ms"]["p50"]
    assert 100 < event_delta < 400
    content_delta = abs(slow["latency_ms"]["p50"] - fast["latency_ms"]["p50"])
    assert content_delta < 0.5 * event_delta


def test_the_transform_really_runs_and_frames_come_back_decoded(sweep: dict):
    measured = case(sweep, 0.1)
    assert set(measured["orientations"]) == {"flip_ud"}, "browser mirror undone, flip applied"
    assert measured["undecoded"] == 0
    assert measured["setup_ms"]["queue_wait_ms"] > 0


def test_mid_stream_transform_change_delay_is_reported(tmp_path: Path):
    body = (
        "duration_s = 5\nwarmup_s = 1\n[source]\nwidth = 320\nheight = 240\n"
        '[[targets]]\nkind = "gradio-stream"\ntransform = "identity"\nstream_every = 0.1\n'
        'switch_transform = "flip"\nswitch_at_s = 3\n'
    )
    measured = run(tmp_path, body)["cases"][0]
    switch = measured["switch_to_output_ms"]
    assert switch is not None and switch["n"] == 1
    assert 0 < switch["p50"] < 2000
    assert measured["orientations"].get("identity", 0) > 0 and measured["orientations"].get("flip_ud", 0) > 0


def test_users_beyond_concurrency_limit_wait_in_the_queue(tmp_path: Path):
    body = (
        "duration_s = 6\nwarmup_s = 1\n[source]\nwidth = 320\nheight = 240\n"
        '[[targets]]\nkind = "gradio-stream"\ntransform = "flip"\nstream_every = 0.1\nusers = 2\n'
        "concurrency_limit = 1\ntime_limit = 2\n"
    )
    measured = run(tmp_path, body)["cases"][0]
    waits = sorted(u["queue_wait_ms"] for u in measured["per_user"])
    # the second user starts only when the first stream's 2 s time_limit frees the slot; that limit runs from
    # about the first user's join and includes a cold server's first-call warm-up (0.4-0.8 s of waits[0])
    assert waits[1] > 1500 and waits[1] - waits[0] > 1000
    assert all(u["n"] > 0 for u in measured["per_user"])


def test_a_plain_guide_app_is_measured_from_its_url_alone(tmp_path: Path):
    command = TargetCommand([sys.executable, str(APPS / "guide_webcam_app.py")], ready_path="/config")
    with launch(command, tmp_path / "app.log") as app:
        body = (
            "duration_s = 4\nwarmup_s = 1\n[source]\nwidth = 320\nheight = 240\n"
            f'[[targets]]\nkind = "gradio-stream"\nurl = "{app.url}"\n'
        )
        measured = run(tmp_path, body)["cases"][0]
    assert measured["status"] == "ok" and measured["n"] > 10
    assert measured["settings"]["stream_every"] == 0.1, "read from the app's /config, as the browser does"
    assert measured["fps"] == pytest.approx(10, rel=0.15)
    # the guide app's dropdown defaults to flip; our client sends the app's own defaults
    assert set(measured["orientations"]) == {"flip_ud"}
