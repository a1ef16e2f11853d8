"""The frame-ID marker survives every transform and codec on the path, and never lies."""

from __future__ import annotations

import fractions

import av
import cv2
import numpy as np
import pytest

from bench.media.camera import VirtualCamera
from bench.media.marker import decode_marker, encode_marker
from targets.transforms import cartoon, edges

FRAMES = 60


TRANSFORMS = {
    "identity": (lambda img: img, "identity"),
    "flip_ud": (np.flipud, "flip_ud"),
    "flip_lr": (np.fliplr, "flip_lr"),
    "edges": (edges, "identity"),
    "cartoon": (cartoon, "identity"),
}


def through_image_codec(frames: list[np.ndarray], ext: str, params: list[int]) -> list[np.ndarray]:
    out = []
    for frame in frames:
        ok, data = cv2.imencode(ext, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
        assert ok
        out.append(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return out


def through_vp8(frames: list[np.ndarray], bitrate: int = 1_000_000) -> list[np.ndarray]:
    """Encode and decode with libvpx as WebRTC does (aiortc's default is ~1 Mbit/s at 30 fps)."""
    height, width = frames[0].shape[:2]
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.bit_rate = bitrate
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    decoder = av.CodecContext.create("libvpx", "r")
    out = []
    packets = []
    for index, frame in enumerate(frames):
        video = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video.pts = index
        packets += encoder.encode(video)
    packets += encoder.encode(None)
    for packet in packets:
        out += [f.to_ndarray(format="rgb24") for f in decoder.decode(packet)]
    return out


CODECS = {
    "raw": lambda frames: frames,
    "jpeg75": lambda frames: through_image_codec(frames, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 75]),
    # lossy q80: PIL's default, which Gradio's WebP outputs use (cv2's default is lossless and 4x slower)
    "webp": lambda frames: through_image_codec(frames, ".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
    "vp8": through_vp8,
}


def camera_frames(width: int, height: int, start: int = 1000) -> tuple[list[int], list[np.ndarray]]:
    camera = VirtualCamera(width, height, 30)
    camera.start()
    ids = [start + i * 7919 for i in range(FRAMES)]
    return ids, [camera.frame(i) for i in ids]


SIZES = {"640": (640, 480), "320": (320, 240), "640to320": (640, 480, 320, 240)}
QUICK = {("flip_ud", "vp8", "640"), ("edges", "jpeg75", "320"), ("identity", "webp", "640to320")}


@pytest.mark.parametrize(
    ("transform", "codec", "size"),
    [
        pytest.param(t, c, s, marks=() if (t, c, s) in QUICK else pytest.mark.slow, id=f"{t}-{c}-{s}")
        for t in TRANSFORMS
        for c in CODECS
        for s in SIZES
    ],
)
def test_marker_survives_transform_and_codec(transform: str, codec: str, size: str):
    """camera -> codec -> server transform (maybe resized) -> codec -> client: every frame, right id."""
    dims = SIZES[size]
    ids, frames = camera_frames(dims[0], dims[1])
    apply, orientation = TRANSFORMS[transform]
    sent = CODECS[codec](frames)
    served = [np.ascontiguousarray(apply(f)) for f in sent]
    if len(dims) == 4:
        served = [cv2.resize(f, dims[2:], interpolation=cv2.INTER_AREA) for f in served]
    received = CODECS[codec](served)
    readings = [decode_marker(f) for f in received]
    decoded = [r for r in readings if r is not None]
    assert len(decoded) == FRAMES, f"{FRAMES - len(decoded)} of {FRAMES} frames not decoded"
    assert [r.frame_id for r in readings] == ids, "a wrong id was reported"
    assert {r.orientation for r in decoded} == {orientation}


def test_noise_and_unmarked_scenes_never_decode():
    rng = np.random.default_rng(7)
    for _ in range(2000):
        assert decode_marker(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) is None
    camera = VirtualCamera(640, 480, 30)
    camera.start()
    assert decode_marker(camera._scene) is None
    assert decode_marker(np.full((480, 640, 3), 128, np.uint8)) is None


def test_a_damaged_marker_is_rejected_not_misread():
    camera = VirtualCamera(640, 480, 30)
    camera.start()
    frame = camera.frame(4242)
    other = camera.frame(4243)
    # paste one cell row of another frame's marker: bits change, the CRC must catch it
    damaged = frame.copy()
    damaged[300:340] = other[300:340]
    assert decode_marker(frame).frame_id == 4242
    reading = decode_marker(damaged)
    assert reading is None or reading.frame_id in (4242, 4243)


def test_ids_outside_range_are_refused():
    image = np.zeros((480, 640, 3), np.uint8)
    with pytest.raises(ValueError, match="frame_id"):
        encode_marker(image, 1 << 24)
