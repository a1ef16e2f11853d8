"""Virtual camera: a deterministic clock of frames, each carrying its frame-ID marker.

Frame i is captured at `t0 + i / fps` (perf_counter seconds). Clients either
wait for each frame (WebRTC sends every frame) or grab the latest one at their
own tick (a browser's `.stream()` timer); either way the capture time is known
exactly, so latency never depends on when a client happened to look.

Scene mode (`scene_period_s`, off by default) alternates the background between a
dark and a bright scene every period, for apps whose outputs lose the marker:
their latency is then measured from each scene switch to the first output that
changed (`bench.media.scene_change`). The marker is still drawn on every frame.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict

import numpy as np

from bench.media.marker import encode_marker

KEEP_FRAMES = 8  # rendered frames kept: every user, the shared encoder and the comparer ask for the newest few


class VirtualCamera:
    def __init__(
        self, width: int = 640, height: int = 480, fps: float = 30.0, scene_period_s: float | None = None
    ) -> None:
        self.width = width
        self.height = height
        self.fps = fps
        self.t0: float | None = None
        # whole frames per scene: a switch falls on a frame, whose capture time is known exactly
        self.scene_frames = max(1, round(scene_period_s * fps)) if scene_period_s else None
        self._scene = _scene(width, height)  # the background outside scene mode
        self._scenes = _scenes(width, height) if self.scene_frames else (self._scene,)
        self._rendered: OrderedDict[int, np.ndarray] = OrderedDict()
        self._render_lock = threading.Lock()  # the shared encoder renders in its own thread

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

    def scene_of(self, frame_id: int) -> int:
        """Which scene frame `frame_id` shows (always 0 outside scene mode)."""
        return (frame_id // self.scene_frames) % len(self._scenes) if self.scene_frames else 0

    def scene_switches(self, until_s: float) -> dict[int, float]:
        """The first frame of each new scene captured by `until_s`, with its capture time (none outside scene mode)."""
        if not self.scene_frames:
            return {}
        last = self.latest_id(until_s)
        return {i: self.capture_time(i) for i in range(self.scene_frames, last + 1, self.scene_frames)}

    def frame(self, frame_id: int) -> np.ndarray:
        """RGB uint8 frame `frame_id` (any ID, rendered the same every time): a moving scene plus the marker.

        The newest few frames are rendered once and shared: the array is read-only (copy it to draw on it).
        """
        with self._render_lock:
            image = self._rendered.get(frame_id)
            if image is not None:
                self._rendered.move_to_end(frame_id)
                return image
        image = self._render(frame_id)
        image.flags.writeable = False
        with self._render_lock:
            self._rendered[frame_id] = image
            while len(self._rendered) > KEEP_FRAMES:
                self._rendered.popitem(last=False)
        return image

    def _render(self, frame_id: int) -> np.ndarray:
        image = self._scenes[self.scene_of(frame_id)].copy()
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


def _scenes(width: int, height: int) -> tuple[np.ndarray, ...]:
    """A dark, smooth, cool scene and a bright, warm one covered in small checks: brightness, colour and edge
    density all differ over the whole frame, so a blur, a tiny resize or an edge filter still tells them apart."""
    y, x = np.mgrid[0:height, 0:width]
    dark = np.dstack([x * 80 // max(width - 1, 1), y * 60 // max(height - 1, 1), np.full_like(x, 70)])
    check = max(4, width // 40)
    checks = (x // check + y // check) % 2 * 60
    bright = np.dstack([250 - checks // 2, 230 - checks, 80 + checks])
    return dark.astype(np.uint8), bright.astype(np.uint8)
