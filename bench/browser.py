"""A real browser as a client: headless Chromium runs Gradio's own frontend with a fake camera.

This is the reference our synthetic Gradio client is checked against
(`bench fidelity`). Chromium plays a Y4M file of marker frames as its webcam
(`--use-file-for-fake-video-capture`), and a script injected before the page
loads timestamps every frame the frontend sends (WebSocket / fetch to the
queue) and every output `<img>` that finishes loading. Nothing in the page is
replaced: the timing is Gradio's JS client's own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import Any

import cv2
import httpx
import numpy as np
import websockets

from bench.errors import TargetError, UsageError
from bench.launcher import TargetCommand, launch
from bench.media.camera import VirtualCamera
from bench.media.marker import decode_marker

HOOK = r"""
window.__streambench = {sends: [], shows: [], srcs: {}};
(() => {
  const log = window.__streambench, now = () => performance.timeOrigin + performance.now();
  const isFrame = (url, body) => typeof body === 'string' && body.includes('data:image/') &&
    (url.includes('/gradio_api/stream/') || url.includes('/gradio_api/queue/join'));
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (isFrame(this.url, data)) log.sends.push({t: now(), body: data});
    return send.call(this, data);
  };
  const fetch = window.fetch;
  window.fetch = function (input, init) {
    const url = typeof input === 'string' ? input : String(input.url || input);
    if (init && isFrame(url, init.body)) log.sends.push({t: now(), body: init.body});
    return fetch.apply(this, arguments);
  };
  document.addEventListener('load', (event) => {
    const src = event.target && event.target.tagName === 'IMG' ? event.target.currentSrc : '';
    if (src.includes('/gradio_api/file=')) log.shows.push({t: now(), src});
  }, true);
  const noteSrc = (img) => {
    const src = img.getAttribute('src') || '';
    if (src.includes('/gradio_api/file=') && !(src in log.srcs)) log.srcs[src] = now();
  };
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.type === 'attributes') { if (change.target.tagName === 'IMG') noteSrc(change.target); continue; }
      for (const node of change.addedNodes) {
        if (node.tagName === 'IMG') noteSrc(node);
        else if (node.querySelectorAll) node.querySelectorAll('img').forEach(noteSrc);
      }
    }
  }).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
})();
"""
CLICK = "(b => b ? (b.click(), true) : false)(Array.from(document.querySelectorAll('button')).find(b => {test}))"
ACCESS_WEBCAM = CLICK.format(test="b.innerText.includes('Access Webcam')")
START_RECORDING = CLICK.format(test="b.innerText.trim() === 'Record'")
STOP_RECORDING = CLICK.format(test="b.innerText.includes('Stop')")


@dataclass(frozen=True)
class BrowserEvent:
    """One frame the page sent, or one output it showed: browser clock (s) and the marker's frame ID."""

    t_s: float
    frame_id: int | None
    src_set_s: float | None = None  # an output's: when the page set the <img> src, before fetching it


@dataclass
class BrowserTrace:
    sends: list[BrowserEvent]
    shows: list[BrowserEvent]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    raise UsageError("chromium not found on PATH (Debian: apt-get install chromium)")


def write_y4m(path: Path, width: int, height: int, fps: int, frames: int) -> None:
    """Marker frames 0..frames-1 as a Y4M file Chromium loops as its fake webcam."""
    camera = VirtualCamera(width, height, fps)
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame_id in range(frames):
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(camera.frame(frame_id), cv2.COLOR_RGB2YUV_I420).tobytes())


@contextlib.asynccontextmanager
async def gradio_page(app_url: str, camera_file: Path, work_dir: Path) -> AsyncIterator[_DevTools]:
    """Headless Chromium on the app with the webcam on (its preview playing), not yet streaming."""
    argv = [
        chromium_path(),
        "--headless=new",
        "--no-sandbox",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera_file}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port={port}",
        f"--user-data-dir={work_dir / 'chromium-profile'}",
        "--window-size=1280,1000",
        "about:blank",
    ]
    with launch(TargetCommand(argv, ready_path="/json/version"), work_dir / "chromium.log") as chromium:
        pages = httpx.get(f"{chromium.url}/json/list", timeout=10).json()
        page = next(p for p in pages if p.get("type") == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=1 << 30) as socket:
            devtools = _DevTools(socket)
            await devtools.call("Page.enable")
            await devtools.call("Page.addScriptToEvaluateOnNewDocument", source=HOOK)
            await devtools.call("Page.navigate", url=app_url)
            await devtools.until(ACCESS_WEBCAM, "the webcam component's 'Click to Access Webcam' button")
            yield devtools


async def record_gradio_stream(app_url: str, camera_file: Path, duration_s: float, work_dir: Path) -> BrowserTrace:
    """Open the app in headless Chromium, start the webcam stream, record `duration_s`, decode the markers."""
    async with gradio_page(app_url, camera_file, work_dir) as devtools:
        await devtools.until(START_RECORDING, "the webcam's 'Record' button (camera access denied?)")
        await asyncio.sleep(duration_s)
        log = await devtools.evaluate("JSON.stringify(window.__streambench)")
        await devtools.evaluate(STOP_RECORDING)
    recorded = json.loads(log)
    async with httpx.AsyncClient(timeout=10) as http:
        shows = [
            BrowserEvent(s["t"] / 1000, await _shown_frame(http, s["src"]), _seconds(recorded["srcs"].get(s["src"])))
            for s in recorded["shows"]
        ]
    sends = [BrowserEvent(s["t"] / 1000, _sent_frame(s["body"])) for s in recorded["sends"]]
    return BrowserTrace(sends, shows)


async def idle_gradio_page(
    app_url: str, camera_file: Path, work_dir: Path, ready: Event, done: Event, stream_first_s: float = 0.0
) -> None:
    """Keep the page open with its camera preview playing, not streaming, from `ready` until `done`.

    The control for a shared machine: our client measured beside an idle browser
    pays the same CPU tax the browser's own measurement pays. With
    `stream_first_s`, the page first streams that long and clicks Stop, as a
    user who is done but keeps the tab open.
    """
    async with gradio_page(app_url, camera_file, work_dir) as devtools:
        if stream_first_s > 0:
            await devtools.until(START_RECORDING, "the webcam's 'Record' button (camera access denied?)")
            await asyncio.sleep(stream_first_s)
            await devtools.until(STOP_RECORDING, "the webcam's 'Stop' button")
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.1)


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _sent_frame(body: str) -> int | None:
    """The marker in the data URL the page sent (mirrored, as the webcam component draws it)."""
    start = body.index("data:image/")
    encoded = body[body.index(",", start) + 1 : body.index('"', start)]
    return _frame_id(base64.b64decode(encoded))


async def _shown_frame(http: httpx.AsyncClient, src: str) -> int | None:
    response = await http.get(src)
    return _frame_id(response.content) if response.status_code == 200 else None


def _frame_id(encoded: bytes) -> int | None:
    image = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
    reading = decode_marker(image[..., ::-1]) if image is not None else None
    return reading.frame_id if reading else None


class _DevTools:
    """The few Chrome DevTools Protocol calls we need, over the page's websocket."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict:
        message_id = next(self.ids)
        await self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self.socket.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise TargetError(f"chromium: {method} failed: {message['error'].get('message')}")
                return message["result"]

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def until(self, expression: str, what: str, timeout_s: float = 30.0) -> None:
        """Poll `expression` until it is true: the page builds its components after the first load."""
        for _ in range(int(timeout_s / 0.25)):
            if await self.evaluate(expression):
                return
            await asyncio.sleep(0.25)
        raise TargetError(f"chromium: {what} never appeared in {timeout_s:.0f} s")
