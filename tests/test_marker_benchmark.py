"""Marker speed: the client decodes every returned frame inline, so it must stay far below 1 ms."""

from __future__ import annotations

from bench.media.camera import VirtualCamera
from bench.media.marker import decode_marker, encode_marker


def test_marker_encode_decode_speed(benchmark):
    camera = VirtualCamera(640, 480, 30)
    camera.start()
    image = camera.frame(0).copy()  # frames are shared read-only: draw on a copy

    def round_trip() -> int:
        encode_marker(image, 123456)
        return decode_marker(image).frame_id

    assert benchmark(round_trip) == 123456
    # aim >= 2000/s (measured ~5000/s); 500/s is the floor that says something regressed 4x+.
    if benchmark.stats is not None:
        assert benchmark.stats.stats.mean < 1 / 500
