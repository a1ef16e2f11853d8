"""Virtual camera: a deterministic clock of frames, each carrying its frame-ID marker.

Frame i is captured at `t0 + i / fps` (perf_counter seconds). Clients either
wait for each frame (WebRTC sends every frame) or grab the latest one at their
own tick (a browser's `.stream()` timer); either way the capture time is known
exactly, so latency never depends on when a client happened to look.
"""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np

from bench.media.marker import encode_marker


class VirtualCamera:
    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0) -> None:
        self.width = width
        self.height = height
        self.fps = fps
        self.t0: float | None = None
        self._scene = _scene(width, height)

    def start(self, t0: float | None = None) -> None:
        self.t0 = time.perf_counter() if t0 is None else t0

    @property
    def started(self) -> float:
        if self.t0 is None:
            raise RuntimeError("camera not started")
        return self.t0

    def capture_time(self, frame_id: int) -> float:
        return self.started + frame_id / self.fps

    def latest_id(self, now: float | None = None) -> int:
        """The newest frame the camera has produced by `now` (what a browser grabs)."""
        now = time.perf_counter() if now is None else now
        return max(0, math.floor((now - self.started) * self.fps))

    def capture_times(self, until_s: float) -> dict[int, float]:
        """Every frame produced from start up to `until_s`, with its capture time."""
        last = self.latest_id(until_s)
        return {i: self.capture_time(i) for i in range(last + 1)}

    async def wait_for(self, frame_id: int) -> None:
        delay = self.capture_time(frame_id) - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)

    def frame(self, frame_id: int) -> np.ndarray:
        """RGB uint8 frame `frame_id`: a moving scene plus the marker."""
        image = self._scene.copy()
        bar = (frame_id * 8) % self.width
        image[:, bar : bar + 16] = (240, 200, 40)
        encode_marker(image, frame_id)
        return image


def _scene(width: int, height: int) -> np.ndarray:
    """A gradient with some texture, so codecs and edge filters have real work."""
    y, x = np.mgrid[0:height, 0:width]
    red = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    green = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    blue = (((x // 40 + y // 40) % 2) * 120 + 60).astype(np.uint8)
    return np.dstack([red, green, blue])
