"""A real browser as a client: headless Chromium, one tab per user, measured on the harness's clock.

Why: the synthetic clients are models of a browser; this one is the browser, so
a scenario can put the two side by side (`client = "chromium"`) and `bench
fidelity --kind fastrtc-webrtc` can say how far the model is from it.

Chromium's fake webcam plays a Y4M loop of marker frames
(`--use-file-for-fake-video-capture`); every tab of the one browser shares it.
Each tab reads every frame its camera preview and its output present
(`requestVideoFrameCallback`, marker read in the page: `bench.browser.WATCH_JS`).
The preview's `captureTime`s say when the fake camera captured each frame; the
harness camera is put on that camera's nominal schedule (`camera.start`), and
every time of a frame is given less how late the fake camera captured it
(`CameraSchedule.lag_s`, kept as `camera_lag_ms`), so the runner's nominal
capture times yield each frame's true capture-to-shown latency. Page times
become perf_counter times by one offset per tab (`bench.browser.page_clock`,
error = half the quickest of 10 round trips), measured again at the end
(`clock_error_ms`, `clock_drift_ms`).

- A FastRTC app mounted on FastAPI gets what FastRTC's own frontend does
  (getUserMedia, RTCPeerConnection with a "text" data channel created before
  the offer that says "handshake" once open, POST /webrtc/offer {sdp, type,
  webrtc_id}, the answer set; candidates gathered before the offer, as in
  fastrtc's plain-JS example) plus POST /input_hook as our WebRTC client does.
  A frame is shown at `expectedDisplayTime` of the remote <video>.
- A Gradio `.stream()` app gets Gradio's own frontend (`bench.browser.HOOK`):
  sends are the frames the page hands to the queue, shows the output <img>
  loads. Its inputs keep the app's defaults (a warning says so otherwise).

Chromium gathers no ICE candidate when loopback is the only interface
(docs/PROTOCOLS.md); on a machine with another local address its host
candidate is that address, and the kernel still routes the traffic over lo.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import math
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import httpx

from bench.browser import (
    ACCESS_WEBCAM,
    HOOK,
    START_RECORDING,
    WATCH_JS,
    WATCH_PREVIEW_JS,
    DevTools,
    PageClock,
    chromium,
    open_page,
    page_clock,
    read_image_marker,
    read_sent_marker,
    write_y4m,
)
from bench.clients.base import ClientConfig
from bench.clients.gradio_stream import unmirror
from bench.media.camera import VirtualCamera
from bench.records import ClientResult, Receipt, Send, SessionRecord

GRACE_S = 1.0  # as the synthetic clients: keep streaming this long after the last measured frame
LOOP_S = 10.0  # the fake camera's loop: longer than any latency, so a frame's place in the loop is unambiguous
LATE_S = 0.5  # how late the fake camera may run behind its schedule (a frame's loop index still tells which one)
DRAIN_S = 0.5  # how often the tabs' frame logs are collected (bounded page memory)
CAMERA_TIMEOUT_S = 15.0
CONNECT_TIMEOUT_S = 15.0
FLAGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns",  # host candidates as addresses: aiortc cannot resolve mDNS
    "--autoplay-policy=no-user-gesture-required",
    # every tab is a user watching its own stream: none may be throttled as a background tab
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]

# FastRTC's frontend (fastrtc/templates/component, `createDataChannel("text")` onwards), minus Svelte
FASTRTC_PAGE_JS = r"""
(() => {
  const log = window.__streambench, now = () => performance.timeOrigin + performance.now();
  const post = (url, body) => fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                          body: JSON.stringify(body)});
  log.times = {};
  log.open = async () => {
    document.body.innerHTML = '<video id="camera" muted autoplay playsinline></video>' +
                              '<video id="output" muted autoplay playsinline></video>';
    const camera = document.getElementById('camera');
    log.stream = await navigator.mediaDevices.getUserMedia({video: {width: {ideal: 1280}, height: {ideal: 720}}});
    camera.srcObject = log.stream;
    log.watch(camera, 'camera');
  };
  log.connect = async (url, webrtcId, inputs) => {
    const output = document.getElementById('output');
    const pc = log.pc = new RTCPeerConnection({iceServers: []});
    pc.addEventListener('connectionstatechange', () => { log.times[pc.connectionState] ??= now(); });
    pc.addEventListener('track', (event) => {
      if (output.srcObject !== event.streams[0]) { output.srcObject = event.streams[0]; log.watch(output, 'output'); }
    });
    const channel = pc.createDataChannel('text');
    channel.onopen = () => channel.send('handshake');
    log.stream.getTracks().forEach(track => pc.addTrack(track, log.stream));
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise(resolve => {
      const done = () => pc.iceGatheringState === 'complete' && resolve();
      pc.addEventListener('icegatheringstatechange', done);
      done();
    });
    log.times.offer = now();
    const offer = {sdp: pc.localDescription.sdp, type: 'offer', webrtc_id: webrtcId};
    const response = await post(url + '/webrtc/offer', offer);
    if (!response.ok) return {error: `POST /webrtc/offer answered HTTP ${response.status}`};
    const answer = await response.json();
    log.times.answer = now();
    if (answer.status === 'failed') return {rejected: (answer.meta || {}).error || 'failed'};
    await pc.setRemoteDescription(answer);
    const hook = await post(url + '/input_hook', {webrtc_id: webrtcId, ...inputs});
    return {input_hook: hook.status};
  };
  log.close = () => {  // what the page's Stop does: stop the transceivers and tracks, close the connection
    log.pc.getTransceivers().forEach(t => t.stop());
    log.stream.getTracks().forEach(t => t.stop());
    log.pc.close();
  };
  log.receiverStats = async () => {
    const stats = {};
    (await log.pc.getStats()).forEach(s => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') stats.inbound = s;
      if (s.type === 'outbound-rtp' && s.kind === 'video') stats.outbound = s;
    });
    return JSON.stringify(stats);
  };
})();
"""
# per frame the receiver's stats add up, libwebrtc's own accounting of its receive path (ms per frame)
RECEIVER_STAGES = {
    "jitter_buffer_ms": ("jitterBufferDelay", "jitterBufferEmittedCount"),
    "assembly_ms": ("totalAssemblyTime", "framesAssembledFromMultiplePackets"),
    "decode_ms": ("totalDecodeTime", "framesDecoded"),
    "processing_ms": ("totalProcessingDelay", "framesDecoded"),
}


@dataclass
class CameraSchedule:
    """Chromium's fake camera on perf_counter's clock: its nominal schedule, and when each frame really came.

    Frame n (counted so that n % loop is its index in the Y4M loop) is due at
    `anchor_s + (n - anchor_index) / fps`. The file device fires on a timer that
    drops its debt when it runs late, so on a loaded machine frames come late
    and the whole schedule slips (by 20 ms in 6 s on 2 busy cores): each frame's
    capture time is taken from the preview, not from the schedule.
    """

    fps: float
    loop: int
    anchor_index: int
    anchor_s: float
    captured: dict[int, float] = field(default_factory=dict)  # n -> capture time the preview reported

    def time(self, n: int) -> float:
        return self.anchor_s + (n - self.anchor_index) / self.fps

    def unwrap(self, index: int, not_after_s: float) -> int:
        """The latest frame with this loop index due by `not_after_s` (a frame is shown after its capture)."""
        laps = math.floor((not_after_s + LATE_S - self.time(index)) * self.fps / self.loop)
        return index + laps * self.loop

    def lag_s(self, n: int) -> float:
        """How late frame n came against the schedule; a frame the preview missed lagged as its nearest neighbour."""
        if n not in self.captured:
            known = sorted(self.captured)
            at = bisect.bisect_left(known, n)
            n = min(known[max(0, at - 1) : at + 1], key=lambda k: abs(k - n))
        return self.captured[n] - self.time(n)


@dataclass
class _Tab:
    """One user: a browser tab, its clock, its session record and the frames it has seen so far."""

    user: int
    devtools: DevTools
    clock: PageClock
    record: SessionRecord
    webrtc_id: str = ""
    offer_s: float | None = None  # perf_counter: the session's first request (the offer; Gradio: Record clicked)
    connected_s: float | None = None  # a FastRTC tab's connectionState "connected": its camera frames are sent
    frames: list[list[Any]] = field(default_factory=list)  # what the page's watchers read, in order


class ChromiumClient:
    """`bench.clients.base.Client` played by headless Chromium, for a FastRTC WebRTC or a Gradio `.stream()` app."""

    async def run(self, camera: VirtualCamera, config: ClientConfig) -> ClientResult:
        result = ClientResult()
        url = config.url.rstrip("/")
        async with httpx.AsyncClient(timeout=10) as http:
            gradio = (await http.get(f"{url}/config")).status_code == 200
        result.app_settings["signalling"] = "Gradio's frontend" if gradio else "POST /webrtc/offer (FastRTC's frontend)"
        with tempfile.TemporaryDirectory(prefix="streambench-chromium-") as folder:
            work = Path(folder)
            loop = round(LOOP_S * camera.fps)
            write_y4m(work / "camera.y4m", camera.width, camera.height, round(camera.fps), loop)
            flags = [*FLAGS, f"--use-file-for-fake-video-capture={work / 'camera.y4m'}"]
            async with chromium(work, flags) as browser, contextlib.AsyncExitStack() as pages:
                page_url = url if gradio else f"{url}/health"  # same origin as the app: no CORS in the way
                hook = HOOK + WATCH_JS + WATCH_PREVIEW_JS if gradio else WATCH_JS + FASTRTC_PAGE_JS
                tabs = []
                for user in range(config.users):
                    devtools = await pages.enter_async_context(open_page(browser, page_url, hook, new_tab=user > 0))
                    tabs.append(_Tab(user, devtools, await page_clock(devtools), SessionRecord(user)))
                result.sessions += [tab.record for tab in tabs]
                run = _Run(camera, config, result, tabs, loop, browser.pid)
                await (run.gradio() if gradio else run.fastrtc())
        return result


class _Run:
    """One case's tabs from camera-on to the end of the grace period.

    Records are made at the end, when every preview frame is in: each time of frame n
    (sent, shown) is given less the camera's lag for n, so the runner's nominal capture
    times (`camera.capture_time`) yield each frame's true capture-to-shown latency.
    """

    def __init__(
        self, camera: VirtualCamera, config: ClientConfig, result: ClientResult, tabs: list[_Tab], loop: int, pgid: int
    ) -> None:
        self.camera, self.config, self.result, self.tabs, self.loop = camera, config, result, tabs, loop
        self.pgid = pgid  # Chromium's process group
        self.url = config.url.rstrip("/")
        self.schedule: CameraSchedule | None = None
        self.first = 0  # the camera frame n the harness calls frame 0
        self.cpu_start = (0.0, 0.0)  # Chromium's CPU seconds and perf_counter when the camera started
        self.page_read_ms: list[float] = []

    async def fastrtc(self) -> None:
        for tab in self.tabs:
            await tab.devtools.until("document.readyState === 'complete'", "the page")
            await _await(tab.devtools, "window.__streambench.open()")
        await self._start_camera()
        await asyncio.gather(*(self._connect(tab) for tab in self.tabs))
        await self._stream()
        for tab in self.tabs:
            if tab.connected_s is not None:
                self._receiver_stats(
                    tab, json.loads(await _await(tab.devtools, "window.__streambench.receiverStats()"))
                )
        schedule = await self._finish()
        for tab in self.tabs:
            if tab.connected_s is not None:  # a browser killed mid-call would hold its slot until ICE times out
                await tab.devtools.evaluate("window.__streambench.close()")
            self._fastrtc_records(tab, schedule)
        self._fail_silent("connected, but no video frame came back")

    async def gradio(self) -> None:
        if self.config.transform != "identity" or self.config.params.get("delay_ms"):
            self.result.warnings.append(
                "the chromium client leaves a Gradio page's inputs (transform, delay_ms) at the app's defaults: "
                "it does not pick them in the page's own widgets"
            )
        for tab in self.tabs:
            await tab.devtools.until(ACCESS_WEBCAM, "the webcam component's 'Click to Access Webcam' button")
        await self._start_camera()
        for tab in self.tabs:
            tab.offer_s = time.perf_counter()
            await tab.devtools.until(START_RECORDING, "the webcam's 'Record' button (camera access denied?)")
        await self._stream()
        logs = [json.loads(await tab.devtools.evaluate("JSON.stringify(window.__streambench)")) for tab in self.tabs]
        schedule = await self._finish()
        async with httpx.AsyncClient(timeout=10) as http:
            for tab, log in zip(self.tabs, logs, strict=True):
                await self._gradio_records(http, tab, log, schedule)
        self._fail_silent("no output shown")

    async def _start_camera(self) -> None:
        """Wait for the first preview frame read, then put the harness camera on the browser camera's schedule."""
        deadline = time.perf_counter() + CAMERA_TIMEOUT_S
        while self.schedule is None:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"chromium: no camera frame with a readable marker in {CAMERA_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.1)
            await self._drain()
            first = next((f for tab in self.tabs for f in tab.frames if f[0] == "camera" and f[1] is not None), None)
            if first is not None:
                tab = next(t for t in self.tabs if first in t.frames)
                self.schedule = CameraSchedule(self.camera.fps, self.loop, first[1], tab.clock.perf(first[3]))
        self.first = (
            round((time.perf_counter() - self.schedule.anchor_s) * self.camera.fps) + self.schedule.anchor_index
        )
        self.camera.start(self.schedule.time(self.first))
        self.cpu_start = (_group_cpu_s(self.pgid), time.perf_counter())

    async def _connect(self, tab: _Tab) -> None:
        tab.webrtc_id = secrets.token_hex(8)
        inputs = {"transform": self.config.transform, "delay_ms": self.config.params.get("delay_ms", 0)}
        connect = (
            f"window.__streambench.connect({json.dumps(self.url)}, {json.dumps(tab.webrtc_id)}, {json.dumps(inputs)})"
        )
        answer = await _await(tab.devtools, connect)
        if "rejected" in answer:
            tab.record.status, tab.record.error = "rejected", answer["rejected"]
            return
        if "error" in answer:
            self._fail(tab, answer["error"])
            return
        self.result.app_settings["transform_input"] = answer["input_hook"] == 200
        if answer["input_hook"] != 200:
            self.result.errors.append(f"user {tab.user}: POST /input_hook answered HTTP {answer['input_hook']}")
        deadline = time.perf_counter() + CONNECT_TIMEOUT_S
        while (state := await tab.devtools.evaluate("window.__streambench.pc.connectionState")) in (
            "new",
            "connecting",
        ):
            if time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.05)
        if state != "connected":
            self._fail(tab, f"not connected (connection {state})")
            return
        times = await tab.devtools.evaluate("window.__streambench.times")
        tab.offer_s, tab.connected_s = tab.clock.perf(times["offer"]), tab.clock.perf(times["connected"])
        tab.record.phases_ms["offer_ms"] = times["answer"] - times["offer"]
        tab.record.phases_ms["connected_ms"] = times["connected"] - times["offer"]

    async def _stream(self) -> None:
        """Collect every tab's frames until the end of the grace period (the page keeps only what is not collected)."""
        end = self.camera.started + self.config.duration_s + GRACE_S
        while (left := end - time.perf_counter()) > 0:
            await asyncio.sleep(min(DRAIN_S, left))
            await self._drain()

    async def _drain(self) -> None:
        for tab in self.tabs:
            frames, cost = json.loads(await tab.devtools.evaluate("window.__streambench.drain()"))
            tab.frames += frames
            self.page_read_ms += cost

    async def _finish(self) -> CameraSchedule:
        """Every preview frame's capture time, each tab's clock checked again, and what Chromium cost."""
        assert self.schedule is not None
        schedule = self.schedule
        cpu_s = _group_cpu_s(self.pgid) - self.cpu_start[0]
        self.result.metrics["chromium_cpu_percent"] = [100 * cpu_s / (time.perf_counter() - self.cpu_start[1])]
        error_ms, drift_ms = [], []
        for tab in self.tabs:
            for side, index, _, capture, *_ in tab.frames:
                if side == "camera" and index is not None and capture is not None:
                    capture_s = tab.clock.perf(capture)
                    schedule.captured.setdefault(schedule.unwrap(index, capture_s), capture_s)
            again = await page_clock(tab.devtools)
            error_ms.append(max(tab.clock.error_s, again.error_s) * 1000)
            drift_ms.append((again.offset_s - tab.clock.offset_s) * 1000)
        lags = [(t - schedule.time(n)) * 1000 for n, t in schedule.captured.items() if n >= self.first]
        typical = median(lags) if lags else 0.0
        self.result.metrics.update(
            camera_lag_ms=[lag - typical for lag in lags],  # how far the fake camera strayed from a steady rate
            page_read_ms=self.page_read_ms,  # what reading one frame's marker cost the page's main thread
            clock_error_ms=error_ms,
            clock_drift_ms=drift_ms,
        )
        return schedule

    def _fastrtc_records(self, tab: _Tab, schedule: CameraSchedule) -> None:
        """The preview's frames after connection are sent (the track sends them all); the output's are shown."""
        for side, index, orientation, capture, received, presented, shown, _, width, height in tab.frames:
            if side == "camera" and tab.connected_s is not None and index is not None and capture is not None:
                capture_s = tab.clock.perf(capture)
                n = schedule.unwrap(index, capture_s)
                if n >= self.first and capture_s >= tab.connected_s:
                    self.result.sends.append(Send(tab.user, n - self.first, capture_s - schedule.lag_s(n)))
            if side != "output":
                continue
            tab.record.received_frame(width, height)
            if index is None:
                self.result.undecoded += 1
                continue
            shown_s = tab.clock.perf(shown)
            n = schedule.unwrap(index, shown_s)
            if n < self.first:
                continue
            captured_s = schedule.time(n) + schedule.lag_s(n)
            stages = {"presented_to_shown_ms": shown - presented}
            if received is not None:
                stages["capture_to_received_ms"] = (tab.clock.perf(received) - captured_s) * 1000
                stages["received_to_presented_ms"] = presented - received
            self._receipt(tab, Receipt(tab.user, n - self.first, shown_s - schedule.lag_s(n), stages, orientation))

    async def _gradio_records(
        self, http: httpx.AsyncClient, tab: _Tab, log: dict[str, Any], schedule: CameraSchedule
    ) -> None:
        """Gradio's page: frames it handed to the queue, and output images once loaded (both read here).

        The page mirrors what it sends when the app says so (`mirror_webcam`): the sent frames tell, and the
        outputs' orientation is given relative to the camera, as our Gradio client gives it.
        """
        sent = [(read_sent_marker(send["body"]), tab.clock.perf(send["t"])) for send in log["sends"]]
        mirrored = sum(r.orientation == "flip_lr" for r, _ in sent if r) > sum(1 for r, _ in sent if r) / 2
        for reading, send_s in sent:
            n = schedule.unwrap(reading.frame_id, send_s) if reading else -1
            if n >= self.first:
                self.result.sends.append(Send(tab.user, n - self.first, send_s - schedule.lag_s(n)))
        for show in log["shows"]:
            response = await http.get(show["src"])
            reading = read_image_marker(response.content) if response.status_code == 200 else None
            if reading is None:
                self.result.undecoded += 1
                continue
            shown_s = tab.clock.perf(show["t"])
            n = schedule.unwrap(reading.frame_id, shown_s)
            src_set = log["srcs"].get(show["src"])
            stages = {"fetch_ms": show["t"] - src_set} if src_set is not None else {}
            orientation = unmirror(reading.orientation) if mirrored else reading.orientation
            if n >= self.first:
                self._receipt(tab, Receipt(tab.user, n - self.first, shown_s - schedule.lag_s(n), stages, orientation))

    def _receipt(self, tab: _Tab, receipt: Receipt) -> None:
        self.result.receipts.append(receipt)
        key = receipt.orientation or "?"
        self.result.orientations[key] = self.result.orientations.get(key, 0) + 1
        if tab.offer_s is not None:
            tab.record.phases_ms.setdefault("first_frame_ms", (receipt.recv_s - tab.offer_s) * 1000)

    def _receiver_stats(self, tab: _Tab, stats: dict[str, Any]) -> None:
        """libwebrtc's own per-frame accounting of its receive path, and how many frames each side handled."""
        inbound = stats.get("inbound") or {}
        for name, (total, count) in RECEIVER_STAGES.items():
            if inbound.get(count):
                self.result.metrics.setdefault(name, []).append(1000 * inbound[total] / inbound[count])
        counts = {"receiver": (inbound, ("framesReceived", "framesDecoded", "framesDropped", "freezeCount"))}
        counts["sender"] = (stats.get("outbound") or {}, ("framesEncoded", "framesSent"))
        for side, (report, names) in counts.items():
            for name in names:
                key = f"{side}_{name}"
                self.result.metrics[key] = self.result.metrics.get(key, 0) + report.get(name, 0)
        tab.record.received_bytes = int(inbound.get("bytesReceived", 0))
        if tab.connected_s is not None:
            tab.record.received_s = time.perf_counter() - tab.connected_s

    def _fail_silent(self, error: str) -> None:
        for tab in self.tabs:
            if not any(r.user == tab.user for r in self.result.receipts):
                self._fail(tab, error)

    def _fail(self, tab: _Tab, error: str) -> None:
        if tab.record.status == "ok":
            tab.record.status, tab.record.error = "failed", error
            self.result.errors.append(f"user {tab.user}: {error}")


async def _await(devtools: DevTools, expression: str) -> Any:
    """Evaluate a promise in the page and return its value."""
    answer = await devtools.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
    if "exceptionDetails" in answer:
        details = answer["exceptionDetails"]
        raise RuntimeError(f"chromium page: {(details.get('exception') or {}).get('description') or details['text']}")
    return answer["result"].get("value")


def _group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) of the processes in Chromium's process group now, reaped children included."""
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")
