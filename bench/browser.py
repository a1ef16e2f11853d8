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
loaded 2-core machine). `WATCH_JS` reads a presented frame's marker in the page
instead (a port of bench.media.marker, ~3 ms a frame): the `chromium` client
(bench/clients/chromium.py) uses it on a camera preview and on WebRTC output.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
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
from bench.launcher import RunningTarget, TargetCommand, launch
from bench.media.camera import VirtualCamera
from bench.media.marker import MarkerReading, decode_marker

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
# The page's own marker reader: bench/media/marker.py line for line (same layout, pair rule, CRC and orientation
# order), so a presented frame is read in the page (~2.5 ms at 320x240) instead of being copied out as a JPEG.
# `watch(video, side)` reads every frame a <video> presents (requestVideoFrameCallback) into __streambench.frames as
# [side, id, orientation, captureTime, receiveTime, presentationTime, expectedDisplayTime, presentedFrames, w, h]
# (times on the page clock, performance.timeOrigin + ms), and the time each read took into __streambench.cost.
WATCH_JS = r"""
window.__streambench = Object.assign(window.__streambench || {}, {frames: [], cost: []});
(() => {
  const GRID_W = 16, GRID_H = 24, ROWS = 8, COLS = 10, ORIGIN_X = 1, ORIGIN_Y = GRID_H - ROWS - 1;
  const MIN_RATIO = 1.5, MIN_ENERGY = 6.0, MAX_ERASURES = 2, CRC_SALT = 0x5A3C;
  const ORIENTATIONS = [['identity', 0, 0], ['flip_lr', 1, 0], ['flip_ud', 0, 1], ['rotate_180', 1, 1]];
  const roundEven = (v) => { const r = Math.round(v); return Math.abs(v % 1) === 0.5 && r % 2 ? r - 1 : r; };
  const layouts = new Map();
  const layout = (height, width) => {
    const key = height + 'x' + width;
    if (!layouts.has(key)) {
      const cellW = width / GRID_W, cellH = height / GRID_H;
      const xs = [...Array(COLS + 1).keys()].map(i => roundEven((ORIGIN_X + i) * cellW));
      const ys = [...Array(ROWS + 1).keys()].map(i => roundEven((ORIGIN_Y + i) * cellH));
      const inner = (edges, size) => {
        const pad = Math.max(1, roundEven(size * 0.25));
        return edges.slice(0, -1).map((e, i) => [e + pad, Math.max(edges[i + 1] - pad, e + pad + 1)]);
      };
      layouts.set(key, {cols: inner(xs, cellW), rows: inner(ys, cellH)});
    }
    return layouts.get(key);
  };
  const crc = (id) => {
    let value = 0xFFFF;
    for (const byte of [(id >> 16) & 255, (id >> 8) & 255, id & 255]) {
      value ^= byte << 8;
      for (let k = 0; k < 8; k++) value = value & 0x8000 ? ((value << 1) ^ 0x1021) & 0xFFFF : (value << 1) & 0xFFFF;
    }
    return value ^ CRC_SALT;
  };
  const read = (pixels, width, height, flipX, flipY, {cols, rows}) => {
    const luma = (y, x) => pixels[((flipY ? height - 1 - y : y) * width + (flipX ? width - 1 - x : x)) * 4 + 1];
    const energy = [];
    for (const [top, bottom] of rows) for (const [left, right] of cols) {
      let sum = 0;
      for (let y = top; y < bottom; y++) {
        for (let x = left; x < right; x++) sum += Math.abs(luma(y, x + 1) - luma(y, x));
      }
      energy.push(sum / ((bottom - top) * (right - left)));
    }
    const bits = [], unsure = [];
    for (let k = 0; k < energy.length / 2; k++) {
      const first = energy[2 * k], second = energy[2 * k + 1], strong = Math.max(first, second);
      bits.push(first > second ? 1 : 0);
      if (strong < MIN_ENERGY || strong < MIN_RATIO * Math.min(first, second)) unsure.push(k);
    }
    if (unsure.length > MAX_ERASURES) return null;
    const found = new Set();
    for (let guess = 0; guess < 1 << unsure.length; guess++) {
      unsure.forEach((k, i) => { bits[k] = (guess >> i) & 1; });
      let id = 0, check = 0;
      for (let k = 0; k < 24; k++) id = id * 2 + bits[k];
      for (let k = 24; k < 40; k++) check = check * 2 + bits[k];
      if (crc(id) === check) found.add(id);
    }
    return found.size === 1 ? [...found][0] : null;
  };
  const log = window.__streambench;
  log.decode = (pixels, width, height) => {
    if (height < GRID_H * 4 || width < GRID_W * 4) return [null, null];
    const cells = layout(height, width);
    for (const [name, flipX, flipY] of ORIENTATIONS) {
      const id = read(pixels, width, height, flipX, flipY, cells);
      if (id !== null) return [id, name];
    }
    return [null, null];
  };
  const at = (t) => t === undefined || t === null ? null : performance.timeOrigin + t;
  log.watch = (video, side) => {
    if (video.__streambench) return;
    video.__streambench = side;
    const canvas = document.createElement('canvas'), context = canvas.getContext('2d', {willReadFrequently: true});
    const presented = (_, meta) => {
      const start = performance.now();
      const width = Math.round(video.videoWidth / 2), height = Math.round(video.videoHeight / 2);
      if (canvas.width !== width || canvas.height !== height) [canvas.width, canvas.height] = [width, height];
      context.drawImage(video, 0, 0, width, height);
      const [id, orientation] = log.decode(context.getImageData(0, 0, width, height).data, width, height);
      log.frames.push([side, id, orientation, at(meta.captureTime), at(meta.receiveTime), at(meta.presentationTime),
                       at(meta.expectedDisplayTime), meta.presentedFrames, video.videoWidth, video.videoHeight]);
      log.cost.push(performance.now() - start);
      video.requestVideoFrameCallback(presented);
    };
    video.requestVideoFrameCallback(presented);
  };
  log.drain = () => JSON.stringify([log.frames.splice(0), log.cost.splice(0)]);
})();
"""
# Gradio's webcam preview: every <video> the page adds is its camera (the output is an <img>)
WATCH_PREVIEW_JS = r"""
new MutationObserver(() => document.querySelectorAll('video').forEach(v => window.__streambench.watch(v, 'camera')))
  .observe(document, {subtree: true, childList: true});
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


def chromium_version() -> str | None:
    """E.g. "Chromium 156.0.8078.108", from `chromium --version`: stored beside the fidelity numbers it sets."""
    try:
        out = subprocess.run([chromium_path(), "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return " ".join(out.stdout.split()[:2]) or None


def write_y4m(path: Path, width: int, height: int, fps: int, frames: int) -> None:
    """Marker frames 0..frames-1 as a Y4M file Chromium loops as its fake webcam."""
    camera = VirtualCamera(width, height, fps)
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame_id in range(frames):
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(camera.frame(frame_id), cv2.COLOR_RGB2YUV_I420).tobytes())


@contextlib.asynccontextmanager
async def chromium(work_dir: Path, flags: list[str]) -> AsyncIterator[RunningTarget]:
    """Headless Chromium in its own process group, its DevTools endpoint on a free 127.0.0.1 port."""
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
    with launch(TargetCommand(argv, ready_path="/json/version"), work_dir / "chromium.log") as browser:
        yield browser


@contextlib.asynccontextmanager
async def open_page(browser: RunningTarget, url: str, hook: str, new_tab: bool = False) -> AsyncIterator[DevTools]:
    """`url` in the browser's first tab (or a new one), `hook` run before the page's own scripts."""
    if new_tab:
        page = httpx.put(f"{browser.url}/json/new?about:blank", timeout=10).json()
    else:
        pages = httpx.get(f"{browser.url}/json/list", timeout=10).json()
        page = next(p for p in pages if p.get("type") == "page")
    async with websockets.connect(page["webSocketDebuggerUrl"], max_size=1 << 30) as socket:
        devtools = DevTools(socket)
        await devtools.call("Page.enable")
        await devtools.call("Page.addScriptToEvaluateOnNewDocument", source=hook)
        await devtools.call("Page.navigate", url=url)
        yield devtools


@contextlib.asynccontextmanager
async def chromium_page(app_url: str, work_dir: Path, hook: str, flags: list[str]) -> AsyncIterator[DevTools]:
    """Headless Chromium on the app, `hook` run before the page's own scripts."""
    async with chromium(work_dir, flags) as browser, open_page(browser, app_url, hook) as devtools:
        yield devtools


@contextlib.asynccontextmanager
async def gradio_page(app_url: str, camera_file: Path, work_dir: Path) -> AsyncIterator[DevTools]:
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
    sends = [BrowserEvent(s["t"] / 1000, _id(read_sent_marker(s["body"]))) for s in recorded["sends"]]
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
        clock = await page_clock(devtools)
        click_s = time.perf_counter()
        await devtools.evaluate(PRESS_START)
        while time.perf_counter() < click_s + timeout_s and await devtools.evaluate(HLS_PROGRESS) < media_s:
            await asyncio.sleep(PROGRESS_POLL_S)
        log = json.loads(await devtools.evaluate("JSON.stringify(window.__streambench)"))

    def request(entry: dict[str, Any]) -> PageRequest:
        end = clock.perf(entry["end"]) if "end" in entry else None
        listed = {key: entry.get(key) for key in ("durations", "uris")}
        return PageRequest(
            entry["url"], clock.perf(entry["start"]), end, **listed, target_duration_s=entry.get("target")
        )

    frames = [
        PresentedFrame(
            clock.perf(f["t"]), _frame_id(base64.b64decode(f["jpeg"].split(",", 1)[1])), f["media"], f["presented"]
        )
        for f in log["frames"]
    ]
    return HLSBrowserTrace(
        click_s=click_s,
        join_s=clock.perf(log["join"]) if log["join"] is not None else None,
        url_s=clock.perf(log["url"]) if log["url"] is not None else None,
        frames=frames,
        playlists=[request(r) for r in log["playlists"]],
        segments=[request(r) for r in log["segments"]],
        events=[(e["name"], clock.perf(e["t"])) for e in log["events"]],
    )


@dataclass(frozen=True)
class PageClock:
    """The page's clock (performance.timeOrigin + now(), s) minus perf_counter, from the quickest of a few round
    trips: both count CLOCK_MONOTONIC from different origins, so one offset holds for the whole run."""

    offset_s: float
    error_s: float  # half the quickest round trip: the offset is exact to within this

    def perf(self, page_ms: float) -> float:
        """A page time (ms since the epoch origin the page uses) on perf_counter's clock."""
        return page_ms / 1000 - self.offset_s


async def page_clock(devtools: DevTools) -> PageClock:
    best: tuple[float, float] | None = None
    for _ in range(CLOCK_PROBES):
        before = time.perf_counter()
        page_ms = await devtools.evaluate("performance.timeOrigin + performance.now()")
        after = time.perf_counter()
        if best is None or after - before < best[0]:
            best = (after - before, page_ms / 1000 - (before + after) / 2)
    assert best is not None
    return PageClock(best[1], best[0] / 2)


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def read_sent_marker(body: str) -> MarkerReading | None:
    """The marker in the data URL the page sent (mirrored, as the webcam component draws it)."""
    start = body.index("data:image/")
    encoded = body[body.index(",", start) + 1 : body.index('"', start)]
    return read_image_marker(base64.b64decode(encoded))


async def _shown_frame(http: httpx.AsyncClient, src: str) -> int | None:
    response = await http.get(src)
    return _frame_id(response.content) if response.status_code == 200 else None


def read_image_marker(encoded: bytes) -> MarkerReading | None:
    """The marker of an encoded image (JPEG, PNG, WebP), or None."""
    image = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
    return decode_marker(image[..., ::-1]) if image is not None else None


def _frame_id(encoded: bytes) -> int | None:
    return _id(read_image_marker(encoded))


def _id(reading: MarkerReading | None) -> int | None:
    return reading.frame_id if reading else None


class DevTools:
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
