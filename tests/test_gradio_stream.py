"""Gradio `.stream()` measured the way a browser drives it, against real Gradio servers."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from itertools import groupby
from pathlib import Path

import pytest

from bench.clients import gradio_stream
from bench.clients.base import ClientConfig
from bench.clients.gradio_stream import GradioStreamClient
from bench.launcher import RunningTarget, TargetCommand, launch
from bench.media.camera import VirtualCamera
from bench.records import ClientResult
from bench.runner import run_scenario
from bench.scenario import load_scenario
from tests.conftest import breaks_after

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
    # each phase shows the orientation of its own transform: no "the transform did not run" false alarm
    assert not any("orientation" in w for w in measured["warnings"]), measured["warnings"]
    assert measured["status"] == "ok", measured["status_reasons"]


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


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTarget]:
    argv = [sys.executable, "-m", "targets.gradio_stream", "--port", "{port}", "--stream-every", "0.1"]
    with launch(TargetCommand(argv, ready_path="/config"), tmp_path_factory.mktemp("app") / "app.log") as target:
        yield target


def drive(
    camera: VirtualCamera, config: ClientConfig, alongside: Callable[[], Awaitable[None]] | None = None
) -> ClientResult:
    """Our client in this process, as the runner drives it, with `alongside` running in the same event loop."""

    async def go() -> ClientResult:
        camera.start()
        other = asyncio.create_task(alongside()) if alongside else None
        try:
            return await GradioStreamClient().run(camera, config)
        finally:
            if other:
                other.cancel()

    return asyncio.run(go())


async def hog_the_loop() -> None:
    """A harness that falls behind: the event loop is blocked 0.2 s out of every 0.4 s."""
    while True:
        await asyncio.sleep(0.2)
        time.sleep(0.2)


def test_a_late_tick_sends_the_frame_current_when_it_fires(app: RunningTarget):
    camera = VirtualCamera(320, 240, 30)
    result = drive(camera, ClientConfig(app.url, 3.0, 1, "flip"), hog_the_loop)
    assert [s.status for s in result.sessions] == ["ok"], result.errors
    assert len(result.tick_lag_ms) == pytest.approx(3.0 / 0.1, abs=2), "one lag per 0.1 s tick"
    assert min(result.tick_lag_ms) > -5 and max(result.tick_lag_ms) > 100, "the blocked loop made ticks late"
    # like a browser timer, a late tick grabs the newest frame: never older than one camera interval plus encoding
    # (the first send is timed after the /queue/join round trip, so it is left out)
    ages_ms = [(s.send_s - camera.capture_time(s.sample_id)) * 1000 for s in list(result.sends)[1:]]
    assert len(ages_ms) > 15
    assert all(0 <= age < 1000 / 30 + 50 for age in ages_ms), sorted(ages_ms)[-5:]


def test_repeated_frames_are_timed_from_their_first_send_and_outputs_carry_orientation(app: RunningTarget):
    """A 4 fps camera under a 0.1 s timer sends each frame 2-3 times; the transform switches half way."""
    camera = VirtualCamera(320, 240, 4)
    params = {"switch_transform": "flip", "switch_at_s": 1.5}
    result = drive(camera, ClientConfig(app.url, 3.0, 1, "identity", params))
    assert [s.status for s in result.sessions] == ["ok"], result.errors
    first_send: dict[int, float] = {}
    for send in sorted(result.sends, key=lambda s: s.send_s):
        first_send.setdefault(send.sample_id, send.send_s)
    assert len(result.sends) > 1.5 * len(first_send), "frames really were sent more than once"
    timed = [r for r in result.receipts if "send_to_event_ms" in r.stages_ms]
    assert len(timed) > 10
    for receipt in timed:
        event_s = receipt.recv_s - receipt.stages_ms["fetch_ms"] / 1000
        assert receipt.stages_ms["send_to_event_ms"] == pytest.approx((event_s - first_send[receipt.sample_id]) * 1000)
    # mirror undone: identity outputs, then flip_ud ones from the switch on, never back
    shown = [r.orientation for r in sorted(result.receipts, key=lambda r: r.recv_s)]
    assert [k for k, _ in groupby(shown)] == ["identity", "flip_ud"], shown


def test_a_fetch_bug_fails_the_session_as_a_client_error_not_a_stalled_target(app: RunningTarget, monkeypatch):
    monkeypatch.setattr(gradio_stream, "decode_marker", breaks_after(gradio_stream.decode_marker, 3))
    result = drive(VirtualCamera(320, 240, 30), ClientConfig(app.url, 4.0, 1, "flip"))
    session = result.sessions[0]
    assert session.status == "failed"
    assert (session.error or "").startswith("streambench client error"), session.error
    assert result.client_errors, "the exception is kept, not dropped with its task"
    assert all(e == "user 0 output fetch: ValueError: marker decoder broke" for e in result.client_errors)
    assert not any("stalled" in e for e in [*result.errors, session.error or ""]), result.errors
    assert len(result.receipts) == 3, "the outputs decoded before the break were kept"
    streamed_on_s = max(s.send_s for s in result.sends) - max(r.recv_s for r in result.receipts)
    assert streamed_on_s < 0.5, "the session stops streaming at the break, not at the end of the run"
