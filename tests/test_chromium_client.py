"""The `chromium` client: headless Chromium as a user of the real FastRTC target, measured on the harness's clock."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.browser import WATCH_JS, chromium, open_page
from bench.catalog import TARGET_KINDS
from bench.clients.base import ClientConfig
from bench.clients.chromium import ChromiumClient
from bench.launcher import TargetCommand, launch
from bench.media.camera import VirtualCamera
from bench.media.marker import decode_marker
from bench.records import ClientResult

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (.ci/run installs it)")


def drive(
    url: str, transform: str, delay_ms: float = 0.0, duration_s: float = 5.0, fps: int = 30
) -> tuple[ClientResult, VirtualCamera]:
    """One Chromium user for `duration_s`; the camera holds the capture schedule the client anchored."""
    camera = VirtualCamera(640, 480, fps)

    async def run() -> ClientResult:
        camera.start()
        config = ClientConfig(url=url, duration_s=duration_s, transform=transform, params={"delay_ms": delay_ms})
        return await ChromiumClient().run(camera, config)

    result = asyncio.run(run())
    assert [s.status for s in result.sessions] == ["ok"], (result.sessions, result.errors)
    return result, camera


def latencies_ms(result: ClientResult, camera: VirtualCamera) -> list[float]:
    return [(r.recv_s - camera.capture_time(r.sample_id)) * 1000 for r in result.receipts]


@pytest.fixture(scope="module")
def fastrtc_url(tmp_path_factory: pytest.TempPathFactory):
    kind = TARGET_KINDS["fastrtc-webrtc"]
    log = tmp_path_factory.mktemp("app") / "app.log"
    with launch(TargetCommand(kind.argv({"concurrency_limit": 2}), kind.ready_path), log) as app:
        yield app.url


def test_chromium_sees_the_flip_and_times_every_frame(fastrtc_url: str):
    result, camera = drive(fastrtc_url, "flip")
    # about 150 frames are captured in 5 s; even a loaded 2-core machine shows well over a third of them
    assert len(result.receipts) > 50 and len(result.sends) > 100
    assert result.orientations.get("flip_ud", 0) == len(result.receipts), result.orientations
    latencies = latencies_ms(result, camera)
    # a frame is shown after its capture (> 0) and, on loopback, well within a second even under load
    assert min(latencies) > 0 and max(latencies) < 1500, (min(latencies), max(latencies))
    # the page and the harness read one clock: two offsets measured seconds apart agree within a few ms (0.0-0.4
    # on a quiet machine, 5.5 once on a loaded one: a round trip's half is the error bound), never a frame period
    assert all(abs(d) < 15 for d in result.metrics["clock_drift_ms"]), result.metrics["clock_drift_ms"]


def test_the_page_reads_markers_as_python_does(tmp_path: Path):
    """The marker reader in the page is a port of bench.media.marker: same IDs, same orientations, same refusals."""
    camera = VirtualCamera(320, 240, 30)
    images, expected = [], []
    for frame_id, flip in ((7, None), (123456, 0), (999, 1), (42, -1)):
        image = camera.frame(frame_id)
        image = image if flip is None else np.ascontiguousarray(np.flip(image, axis={0: 1, 1: 0, -1: (0, 1)}[flip]))
        images.append(image)
        reading = decode_marker(image)
        expected.append([reading.frame_id, reading.orientation])
    images.append(np.full((240, 320, 3), 128, np.uint8))  # no marker: no ID
    expected.append([None, None])

    async def read_in_page() -> list:
        async with chromium(tmp_path, []) as browser, open_page(browser, "about:blank", WATCH_JS) as page:
            await page.until("!!window.__streambench", "the reader")
            found = []
            for image in images:
                rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)]).ravel().tolist()
                found.append(await page.evaluate(f"window.__streambench.decode({json.dumps(rgba)}, 320, 240)"))
            return found

    assert asyncio.run(read_in_page()) == expected
