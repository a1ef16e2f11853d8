"""Latency of apps whose outputs lose the frame marker (scene-change detection), and apps that change nothing."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bench.media.camera import VirtualCamera
from bench.media.marker import decode_marker
from bench.media.scene_change import first_changes, signature, unchanged
from bench.runner import run_scenario
from bench.scenario import load_scenario
from targets.transforms import cartoon, edges, flip

APPS = Path(__file__).parent / "apps"
FPS = 30.0


def scene_camera() -> VirtualCamera:
    camera = VirtualCamera(320, 240, FPS, scene_period_s=0.97)
    camera.start(0.0)
    return camera


def blur(frame: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(frame, (0, 0), 15)


def tiny(frame: np.ndarray) -> np.ndarray:
    """Resized to 32 x 32 and back: nothing of the marker's cells is left."""
    small = cv2.resize(frame, (32, 32), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (frame.shape[1], frame.shape[0]))


def jpeg(frame: np.ndarray, quality: int = 75) -> np.ndarray:
    _, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def webp(frame: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="webp")  # what Gradio does with a streamed output image
    return np.asarray(Image.open(buffer).convert("RGB"))


def vp8(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Through libvpx at aiortc's starting bitrate, as a WebRTC echo carries them."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
    encoder.bit_rate, encoder.framerate, encoder.options = 500_000, 30, {"deadline": "realtime", "cpu-used": "8"}
    decoder = av.CodecContext.create("libvpx", "r")
    out = []
    for index, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        for packet in encoder.encode(frame):
            out += [decoded.to_ndarray(format="rgb24") for decoded in decoder.decode(packet)]
    return out


def simulate(
    camera: VirtualCamera,
    transform: Callable[[np.ndarray], np.ndarray],
    latency_s: float,
    every: int,
    until_s: float,
    jitter: Callable[[np.ndarray, int], np.ndarray] = lambda image, _: image,
) -> tuple[list[float], list[np.ndarray], list[tuple[float, int]], list[float | None]]:
    """An app that shows every `every`-th camera frame `latency_s` after its capture; and, from the frame IDs alone,
    when each switch's first output of the new scene arrived (the expectation)."""
    ids = range(0, camera.latest_id(until_s) + 1, every)
    arrivals = [camera.capture_time(i) + latency_s for i in ids]
    signatures = [signature(jitter(jpeg(transform(camera.frame(i))), i)) for i in ids]
    switches = camera.scene_switches(until_s)
    first_shown = [next((i for i in ids if i >= switch), None) for switch in switches]
    expected = [None if i is None else camera.capture_time(i) + latency_s for i in first_shown]
    return arrivals, signatures, [(t, camera.scene_of(i)) for i, t in switches.items()], expected


@settings(max_examples=4, deadline=None)
@given(
    transform=st.sampled_from([blur, tiny, edges, cartoon]),
    latency_s=st.floats(0.02, 0.6),
    every=st.integers(2, 9),  # a .stream() app at 15 fps down to ~3 fps
)
def test_the_first_output_of_each_new_scene_is_found(transform, latency_s, every):
    camera = scene_camera()
    arrivals, signatures, switches, expected = simulate(camera, transform, latency_s, every, until_s=4.0)
    found = first_changes(arrivals, signatures, switches)
    assert found == pytest.approx(expected, abs=1e-9)


def test_outputs_that_vary_every_frame_still_show_each_switch():
    """Besides the camera's moving bar, each output's brightness wanders by up to 12 grey levels."""
    rng = np.random.default_rng(3)

    def wander(image: np.ndarray, _: int) -> np.ndarray:
        return np.clip(image.astype(int) + int(rng.integers(-12, 13)), 0, 255).astype(np.uint8)

    camera = scene_camera()
    arrivals, signatures, switches, expected = simulate(camera, blur, 0.15, 3, until_s=4.0, jitter=wander)
    assert first_changes(arrivals, signatures, switches) == pytest.approx(expected, abs=1e-9)


@settings(max_examples=6, deadline=None)
@given(noise=st.floats(0.5, 20.0), seed=st.integers(0, 1000))
def test_noise_without_a_scene_change_is_no_change(noise, seed):
    """An app that ignores its input (a fixed picture) under codec-like noise: no switch shows, none is invented."""
    rng = np.random.default_rng(seed)
    camera = scene_camera()
    still = blur(VirtualCamera(320, 240).frame(0))
    arrivals = [camera.capture_time(i) + 0.1 for i in range(0, 120, 3)]
    noisy = (still + noise * rng.standard_normal(still.shape, dtype=np.float32) for _ in arrivals)
    signatures = [signature(np.clip(image, 0, 255).astype(np.uint8)) for image in noisy]
    switches = [(t, camera.scene_of(i)) for i, t in camera.scene_switches(4.0).items()]
    assert first_changes(arrivals, signatures, switches) == [None] * len(switches)


@pytest.mark.parametrize("span", [40, 120, 240])
def test_gradual_drift_is_no_change(span):
    """Outputs that brighten steadily over the run (by `span` grey levels) split in two by brightness, but not
    clearly: a drift is not a scene change."""
    rng = np.random.default_rng(span)
    camera = scene_camera()
    still = VirtualCamera(320, 240).frame(0) // 2
    ids = range(0, 150, 2)
    arrivals = [camera.capture_time(i) + 0.1 for i in ids]
    signatures = [
        signature(np.clip(still + span * i / 150 + rng.normal(0, 2, still.shape), 0, 255).astype(np.uint8)) for i in ids
    ]
    switches = [(t, camera.scene_of(i)) for i, t in camera.scene_switches(5.0).items()]
    assert first_changes(arrivals, signatures, switches) == [None] * len(switches)


def test_returned_frames_count_unchanged_only_when_the_app_did_nothing():
    """Identity through Gradio's JPEG / WebP and through VP8 both ways stays above 34 dB (30 dB is the line);
    flip, edges and cartoon fall below 23 dB."""
    camera = scene_camera()
    frames = [camera.frame(i) for i in range(40)]
    sent = [jpeg(frame, 92) for frame in frames[::8]]  # the browser's canvas.toDataURL
    for returned in ([webp(frame) for frame in sent], [jpeg(frame) for frame in sent]):
        assert all(unchanged(out, frame) for out, frame in zip(returned, frames[::8], strict=True))
    echoed = vp8(vp8(frames))
    assert all(unchanged(out, frame) for out, frame in zip(echoed[10:], frames[10:], strict=False))
    for transform in (flip, edges, cartoon):
        assert not any(unchanged(webp(np.ascontiguousarray(transform(frame))), frame) for frame in frames[::4])


def test_scene_mode_is_off_by_default_and_keeps_the_marker():
    plain = VirtualCamera(320, 240)
    plain.start(0.0)
    assert plain.scene_switches(10.0) == {} and plain.scene_of(500) == 0
    camera = scene_camera()
    assert list(camera.scene_switches(3.0)) == [29, 58, 87]  # 0.97 s at 30 fps is 29 frames
    for frame_id in (28, 29, 58):
        reading = decode_marker(jpeg(camera.frame(frame_id)))
        assert reading is not None and reading.frame_id == frame_id
    assert all(decode_marker(scene) is None for scene in camera._scenes)  # the scenes alone hold no marker
    dark, bright = (camera.frame(i).mean() for i in (0, 29))
    assert bright - dark > 80  # a whole-frame brightness step: blurs and tiny resizes keep it


def run(tmp_path: Path, targets: str, duration_s: float, name: str) -> list[dict]:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\nduration_s = {duration_s}\nwarmup_s = 2\n[source]\nwidth = 320\nheight = 240\n{targets}'
    )
    scenario, resolved = load_scenario(path)
    return run_scenario(scenario, resolved, tmp_path / "runs").summary["cases"]


@pytest.mark.slow
def test_injected_delay_is_recovered_by_change_detection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The blur app's stream_every (0.3 s) is longer than its sleep, so no frame waits for another: a 200 ms
    sleep adds 200 ms to every switch. The tolerance covers the 0.3 s capture timer's phase over ~10 switches
    per run (the 0.97 s scene period spreads it) and this 2-core machine's stalls."""
    target = f'[[targets]]\nkind = "gradio-stream"\napp = "{APPS / "guide_webcam_blur.py"}"\n'
    medians = {}
    for sleep_ms in (0, 200):
        monkeypatch.setenv("BLUR_SLEEP_MS", str(sleep_ms))
        (case,) = run(tmp_path, target, 9, f"blur{sleep_ms}")
        assert case["latency_method"] == "change" and case["undecoded"] > 0
        assert case["n"] >= 6, case["status_reasons"]
        assert any("change detection" in note for note in case["notes"])
        medians[sleep_ms] = case["latency_ms"]["p50"]
    assert medians[200] - medians[0] == pytest.approx(200, abs=80), medians


@pytest.mark.slow
def test_an_app_returning_its_input_is_flagged(tmp_path: Path):
    """The Gradio path. FastRTC's mounted handler that never runs, and a flipping app that is not flagged, are
    tests/test_own_app.py's."""
    targets = "".join(
        f'[[targets]]\nname = "{name}"\nkind = "{kind}"\napp = "{APPS / app}"\n'
        for name, kind, app in (("passthrough", "gradio-stream", "guide_webcam_passthrough.py"),)
    )
    cases = {case["target"]: case for case in run(tmp_path, targets, 4, "unchanged")}
    case = cases["passthrough"]
    assert case["status"] == "degraded" and case["outputs_compared"] >= 3
    assert any("returned its input unchanged" in reason for reason in case["status_reasons"])
