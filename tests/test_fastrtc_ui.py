"""Our WebRTC clients against FastRTC apps served by `stream.ui.launch()`: signalling through the Gradio component."""

from __future__ import annotations

import asyncio
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.clients.base import ClientConfig
from bench.clients.fastrtc_gradio import webrtc_components
from bench.clients.webrtc import WebRTCClient
from bench.clients.webrtc_audio import WebRTCAudioClient
from bench.launcher import RunningTarget, TargetCommand, launch
from bench.media.camera import VirtualCamera
from bench.media.microphone import VirtualMicrophone
from bench.records import ClientResult
from tests.conftest import a_second_webrtc_user_while_the_first_streams

APPS = Path(__file__).parent / "apps"
DURATION_S = 4.0
FPS = 10

# A docs-style app whose extra input is labelled as our cases name it: the tick must carry the case's value.
TRANSFORM_APP = """
import gradio as gr
import numpy as np
from fastrtc import Stream


def transform(image, transform):
    return np.flip(image, axis=0) if transform == "flip" else image


stream = Stream(
    handler=transform,
    modality="video",
    mode="send-receive",
    additional_inputs=[gr.Dropdown(choices=["identity", "flip"], value="identity", label="transform")],
)

if __name__ == "__main__":
    stream.ui.launch()
"""


def serve(app: Path, log_dir: Path) -> RunningTarget:
    return launch(TargetCommand([sys.executable, str(app)], ready_path="/config"), log_dir / "target.log")


@pytest.fixture(scope="module")
def flip_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTarget]:
    with serve(APPS / "guide_fastrtc_ui_flip.py", tmp_path_factory.mktemp("flip")) as target:
        yield target


def drive(url: str, transform: str, duration_s: float = DURATION_S) -> tuple[VirtualCamera, ClientResult]:
    """One user at 320x240@10 for `duration_s`, as the runner does it: camera started, then the client."""
    camera = VirtualCamera(320, 240, FPS)

    async def go() -> ClientResult:
        camera.start()
        return await WebRTCClient().run(camera, ClientConfig(url, duration_s, 1, transform, {"delay_ms": 0}))

    return camera, asyncio.run(go())


def assert_transformed_once_inputs_set(result: ClientResult, orientation: str) -> None:
    """Frames come back untransformed only until the tick has run `set_input`, then all transformed."""
    assert [s.status for s in result.sessions] == ["ok"], result.errors
    assert result.errors == [] and result.client_errors == []
    assert result.app_settings["signalling"] == "Gradio component server"
    arrived = [r.orientation for r in sorted(result.receipts, key=lambda r: r.recv_s)]
    before = arrived.index(orientation)
    assert set(arrived[:before]) <= {"identity"} and set(arrived[before:]) == {orientation}, arrived
    # the tick lands ~70 ms after "connected" (~0.7 s on an app's first queue event): 1-7 frames at 10 fps
    assert len(arrived) - before >= 0.7 * DURATION_S * FPS, arrived


def test_ui_app_exposes_one_video_component_with_its_tick(flip_app):
    config = httpx.get(f"{flip_app.url}/config").json()
    [component] = webrtc_components(config)
    tick = next(d for d in config["dependencies"] if d["api_name"] == "set_input_gradio")
    assert (component.modality, component.mode, component.tick_fn_index) == ("video", "send-receive", tick["id"])
    assert component.root == f"{flip_app.url}/gradio_api"
    assert component.extra_labels == () and component.tick_data("abc", {"transform": "flip"}) == ["abc"]


def test_ui_app_flips_frames_after_the_tick_ran_set_input(flip_app):
    camera, result = drive(flip_app.url, "flip")
    assert_transformed_once_inputs_set(result, "flip_ud")
    assert result.app_settings["transform_input"] is False, "the guide's app has no transform input to set"
    phases = result.sessions[0].phases_ms
    assert 0 < phases["turn_ms"] < phases["offer_ms"] < phases["connected_ms"] < phases["inputs_set_ms"]
    assert phases["connected_ms"] < 2000, "loopback: ~150 ms"
    latencies = [(r.recv_s - camera.capture_time(r.sample_id)) * 1000 for r in result.receipts]
    assert 0 < statistics.median(latencies) < 1000, "sanity only: loopback at 10 fps reads ~115 ms"


def test_second_user_beyond_the_concurrency_limit_is_rejected(flip_app):
    a_second_webrtc_user_while_the_first_streams(flip_app.url, VirtualCamera(320, 240, FPS), 1.0)


def test_an_input_labelled_transform_takes_the_cases_value_through_the_tick(tmp_path: Path):
    app = tmp_path / "transform_app.py"
    app.write_text(TRANSFORM_APP)
    with serve(app, tmp_path) as target:
        [component] = webrtc_components(httpx.get(f"{target.url}/config").json())
        assert (component.extra_labels, component.extra_values) == (("transform",), ("identity",))
        _, result = drive(target.url, "flip")
    assert_transformed_once_inputs_set(result, "flip_ud")
    assert result.app_settings["transform_input"] is True


def test_audio_echo_ui_app_returns_the_microphone(tmp_path: Path):
    mic = VirtualMicrophone(5.0)

    async def go(url: str) -> ClientResult:
        mic.start()
        return await WebRTCAudioClient().run(mic, ClientConfig(url, DURATION_S, 1))

    with serve(APPS / "guide_fastrtc_ui_echo.py", tmp_path) as target:
        result = asyncio.run(go(target.url))
    assert [s.status for s in result.sessions] == ["ok"], result.errors
    assert result.app_settings["signalling"] == "Gradio component server"
    sent, received = {s.sample_id for s in result.sends}, {r.sample_id for r in result.receipts}
    assert received <= sent | {min(sent) - 1} and len(received & sent) >= 0.8 * len(sent), (sent, received)
    latencies = [(r.recv_s - mic.capture_time(r.sample_id)) * 1000 for r in result.receipts]
    assert 0 < statistics.median(latencies) < 1000, "sanity only: loopback reads ~160 ms"
