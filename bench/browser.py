"""A real browser as a client: headless Chromium runs Gradio's own frontend.

This is the reference our synthetic clients are checked against (`bench
fidelity`). For a `.stream()` app Chromium plays a Y4M file of marker frames
as its webcam (`--use-file-for-fake-video-capture`), and a script injected
before the page loads timestamps every frame the frontend sends (WebSocket /
fetch to the queue) and every output `<img>` that finishes loading. For an
HLS output (`gr.Video(streaming=True)`) the script times every request
Gradio's hls.js makes and every frame the `<video>` presents
(`requestVideoFrameCallback`), copying each to a canvas whose marker is read
here. Nothing in the page is replaced: the timing is Gradio's own, less what
the copy costs the page's main thread (here ~6 ms a frame, p50; 25 ms p95 on a
loaded 2-core machine).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import time
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

HLS_HOOK = r"""
window.__streambench = {join: null, url: null, playlists: [], segments: [], events: [], frames: []};
(() => {
  const log = window.__streambench, now = () => performance.timeOrigin + performance.now();
  const parse = JSON.parse;  // the queue's SSE message that hands the page its playlist URL, until it came
  JSON.parse = function (text) {
    if (typeof text === 'string' && text.includes('.m3u8')) [log.url, JSON.parse] = [now(), parse];
    return parse.apply(this, arguments);
  };
  const fetch = window.fetch;
  window.fetch = function (input, init) {
    const url = typeof input === 'string' ? input : String(input.url || input);
    if (log.join === null && url.includes('/queue/join')) log.join = now();
    return fetch.apply(this, arguments);
  };
  const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    this.__streambench = String(url);
    return open.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function () {
    const url = this.__streambench || '', playlist = url.includes('.m3u8');
    if (url.includes('/gradio_api/stream/')) {
      const request = {url, start: now()};
      (playlist ? log.playlists : log.segments).push(request);
      this.addEventListener('loadend', () => {
        request.end = now();
        const text = playlist && this.status === 200 ? this.responseText : '';
        if (!text) return;
        const listed = [...text.matchAll(/#EXTINF:([\d.]+)[^\n]*\n([^\n]+)/g)];
        [request.durations, request.uris] = [listed.map(m => +m[1]), listed.map(m => m[2].trim())];
        request.target = +(/#EXT-X-TARGETDURATION:([\d.]+)/.exec(text) || [0, 0])[1];
      });
    }
    return send.apply(this, arguments);
  };
  const canvas = document.createElement('canvas'), context = canvas.getContext('2d');
  const watch = (video) => {
    if (video.__streambench) return;
    video.__streambench = true;
    for (const name of ['waiting', 'playing']) video.addEventListener(name, () => log.events.push({name, t: now()}));
    const presented = (_, meta) => {
      const width = Math.round(video.videoWidth / 2), height = Math.round(video.videoHeight / 2);
      if (canvas.width !== width || canvas.height !== height) [canvas.width, canvas.height] = [width, height];
      context.drawImage(video, 0, 0, width, height);
      log.frames.push({t: performance.timeOrigin + meta.expectedDisplayTime, media: meta.mediaTime,
                       presented: meta.presentedFrames, jpeg: canvas.toDataURL('image/jpeg', 0.9)});
      video.requestVideoFrameCallback(presented);
    };
    video.requestVideoFrameCallback(presented);
  };
  new MutationObserver(() => document.querySelectorAll('video').forEach(watch))
    .observe(document, {subtree: true, childList: true});
})();
"""
START_BUTTON = "Array.from(document.querySelectorAll('button')).some(b => b.innerText.trim() === 'Start')"
PRESS_START = CLICK.format(test="b.innerText.trim() === 'Start'")
# how much of the stream the <video> has presented (s of media)
HLS_PROGRESS = "(f => f.length ? f[f.length - 1].media - f[0].media : 0)(window.__streambench.frames)"
PROGRESS_POLL_S = 0.25
CLOCK_PROBES = 10


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


@dataclass(frozen=True)
class PresentedFrame:
    """One frame the page's <video> presented (requestVideoFrameCallback), on perf_counter's clock."""

    shown_s: float  # metadata.expectedDisplayTime: when the compositor shows it
    frame_id: int | None
    media_s: float
    presented: int  # metadata.presentedFrames: frames presented so far, including any no callback saw


@dataclass(frozen=True)
class PageRequest:
    """One request Gradio's hls.js made: a playlist load or a segment download."""

    url: str
    start_s: float
    end_s: float | None  # None: still loading when the recording stopped
    durations: list[float] | None = None  # a playlist's: the EXTINF of each segment it listed...
    uris: list[str] | None = None  # ...and its URI
    target_duration_s: float | None = None  # a playlist's EXT-X-TARGETDURATION


@dataclass
class HLSBrowserTrace:
    """What the page did with one HLS stream; perf_counter seconds."""

    click_s: float
    join_s: float | None  # the page's POST /queue/join
    url_s: float | None  # the page read the queue message carrying the playlist URL
    frames: list[PresentedFrame]
    playlists: list[PageRequest]
    segments: list[PageRequest]
    events: list[tuple[str, float]]  # the <video>'s 'waiting' and 'playing' events


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
async def chromium_page(app_url: str, work_dir: Path, hook: str, flags: list[str]) -> AsyncIterator[_DevTools]:
    """Headless Chromium on the app, `hook` run before the page's own scripts."""
    argv = [
        chromium_path(),
        "--headless=new",
        "--no-sandbox",
        *flags,
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
            await devtools.call("Page.addScriptToEvaluateOnNewDocument", source=hook)
            await devtools.call("Page.navigate", url=app_url)
            yield devtools


@contextlib.asynccontextmanager
async def gradio_page(app_url: str, camera_file: Path, work_dir: Path) -> AsyncIterator[_DevTools]:
    """Headless Chromium on the app with the webcam on (its preview playing), not yet streaming."""
    flags = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera_file}",
    ]
    async with chromium_page(app_url, work_dir, HOOK, flags) as devtools:
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


async def record_gradio_hls(app_url: str, work_dir: Path, media_s: float, timeout_s: float) -> HLSBrowserTrace:
    """Open the app in headless Chromium, press Start and record until the <video> has presented `media_s` of the
    stream (or `timeout_s` after the click); decode the markers."""
    flags = ["--autoplay-policy=no-user-gesture-required"]
    async with chromium_page(app_url, work_dir, HLS_HOOK, flags) as devtools:
        await devtools.until(START_BUTTON, "the app's Start button")
        offset_s = await _clock_offset(devtools)
        click_s = time.perf_counter()
        await devtools.evaluate(PRESS_START)
        while time.perf_counter() < click_s + timeout_s and await devtools.evaluate(HLS_PROGRESS) < media_s:
            await asyncio.sleep(PROGRESS_POLL_S)
        log = json.loads(await devtools.evaluate("JSON.stringify(window.__streambench)"))

    def perf(ms: float) -> float:
        return ms / 1000 - offset_s

    def request(entry: dict[str, Any]) -> PageRequest:
        end = perf(entry["end"]) if "end" in entry else None
        listed = {key: entry.get(key) for key in ("durations", "uris")}
        return PageRequest(entry["url"], perf(entry["start"]), end, **listed, target_duration_s=entry.get("target"))

    frames = [
        PresentedFrame(
            perf(f["t"]), _frame_id(base64.b64decode(f["jpeg"].split(",", 1)[1])), f["media"], f["presented"]
        )
        for f in log["frames"]
    ]
    return HLSBrowserTrace(
        click_s=click_s,
        join_s=perf(log["join"]) if log["join"] is not None else None,
        url_s=perf(log["url"]) if log["url"] is not None else None,
        frames=frames,
        playlists=[request(r) for r in log["playlists"]],
        segments=[request(r) for r in log["segments"]],
        events=[(e["name"], perf(e["t"])) for e in log["events"]],
    )


async def _clock_offset(devtools: _DevTools) -> float:
    """The page's clock (performance.timeOrigin + now(), s) minus perf_counter, from the quickest of a few round
    trips: both count CLOCK_MONOTONIC from different origins, so one offset holds for the whole run."""
    best: tuple[float, float] | None = None
    for _ in range(CLOCK_PROBES):
        before = time.perf_counter()
        page_ms = await devtools.evaluate("performance.timeOrigin + performance.now()")
        after = time.perf_counter()
        if best is None or after - before < best[0]:
            best = (after - before, page_ms / 1000 - (before + after) / 2)
    assert best is not None
    return best[1]


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
