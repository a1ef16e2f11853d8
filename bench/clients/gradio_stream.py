"""Browser-faithful client for Gradio `.stream()` webcam events (docs/PROTOCOLS.md, gradio 5).

What Gradio's own frontend does, step by step: every `stream_every` s its timer
grabs the latest webcam frame, mirrored when `mirror_webcam` is on, as a JPEG
data URL (`canvas.toDataURL("image/jpeg")`). The first frame joins the queue;
ticks while the event waits for `process_starts` are skipped; later frames go
over the websocket `/stream/{event_id}` (POST fallback). Outputs arrive as
`process_streaming` SSE messages holding file URLs, which the page then loads.

Like the WebRTC client, a session whose target stalls (nothing over the event
stream for STALL_S while we send) or dies (its port refuses connections) fails
within seconds with that reason, and the outputs shown until then are kept.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import cv2
import httpx
import numpy as np
import websockets

from bench.clients.base import ClientConfig, stalled
from bench.clients.gradio_config import StreamEvent, discover_stream_event, event_choice, set_input
from bench.media.camera import VirtualCamera
from bench.media.marker import decode_marker
from bench.media.scene_change import signature, unchanged
from bench.records import CLIENT_ERROR, ClientResult, OutputLook, Receipt, Send, SessionRecord

GRACE_S = 1.0
STALL_S = 5.0  # no SSE message for this long while sending: the target stalled
FIRST_OUTPUT_TIMEOUT_S = 15.0  # process_starts -> first output (a model may load on the first call)
PROBE_AFTER_S = 1.0  # no SSE message for this long: check that the target's port still answers
PROBE_TIMEOUT_S = 1.0
JPEG_QUALITY = 92  # canvas.toDataURL's default quality
FLIPS = {"identity": (0, 0), "flip_lr": (1, 0), "flip_ud": (0, 1), "rotate_180": (1, 1)}
BY_FLIPS = {v: k for k, v in FLIPS.items()}
SWITCH_ORIENTATION = {"flip": "flip_ud"}


def unmirror(orientation: str) -> str:
    """The orientation relative to the camera frame, undoing the browser's horizontal mirror."""
    lr, ud = FLIPS[orientation]
    return BY_FLIPS[(1 - lr, ud)]


@dataclass
class _Session:
    """One browser tab: what it talks to, what it measures, and its stream's state."""

    user: int
    event: StreamEvent
    http: httpx.AsyncClient
    camera: VirtualCamera
    config: ClientConfig
    result: ClientResult
    record: SessionRecord
    t_join: float = 0.0
    session_hash: str = field(default_factory=lambda: secrets.token_hex(6))
    event_id: str | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    sends: dict[int, float] = field(default_factory=dict)
    switch_s: float | None = None
    closing: bool = False
    listener: asyncio.Task[None] | None = None
    heard_s: float = 0.0  # last SSE message
    outputs: int = 0  # process_streaming messages
    target_down: bool = False  # stalled or gone: it will answer no courtesy close
    fetches: set[asyncio.Task[None]] = field(default_factory=set)  # outputs being loaded

    @property
    def mirror(self) -> bool:
        return bool(self.config.params.get("mirror", self.event.mirror_webcam))

    def client_error(self, where: str, exc: BaseException) -> None:
        """A bug of ours: recorded as such and ending the session, never left to look like a silent target."""
        self.fail(f"{CLIENT_ERROR}: {self.result.add_client_error(f'user {self.user} {where}', exc)}")

    def fail(self, error: str) -> None:
        """The session failed; the first reason is the one kept (later ones are its consequences)."""
        if self.record.status == "ok":
            self.record.status, self.record.error = "failed", error
            self.result.errors.append(f"user {self.user}: {error}")

    async def broke(self, error: str) -> None:
        """A connection to the target broke: say the target is gone when its port refuses connections."""
        self.fail(await self.refused() or error)

    async def refused(self) -> str | None:
        """Why the target is gone, if its port refuses connections or drops them unanswered (a process being torn
        down may still accept into its closing socket); a stalled one accepts and keeps them waiting."""
        try:
            await self.http.get(self.config.url, timeout=PROBE_TIMEOUT_S)
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            self.target_down = True
            return f"target stopped answering ({exc})"
        except httpx.HTTPError:
            pass  # slow or odd, but there: the stall check decides
        return None


def webcam_payload(camera: VirtualCamera, event: StreamEvent, mirror: bool) -> tuple[int, dict[str, Any]]:
    """The camera's newest frame as the webcam's timer sends it: mirrored as shown, a JPEG data URL, among the
    event's default inputs."""
    frame_id = camera.latest_id(time.perf_counter())
    values = list(event.defaults)
    values[event.image_input] = {"url": jpeg_data_url(camera, frame_id, mirror)}
    return frame_id, {"data": values, "event_data": None, "fn_index": event.fn_index, "trigger_id": event.trigger_id}


KEEP_URLS = 8  # data URLs kept per camera: users ticking within a few frames of each other send the same ones
_data_urls: weakref.WeakKeyDictionary[VirtualCamera, OrderedDict[tuple[int, bool], str]] = weakref.WeakKeyDictionary()


def jpeg_data_url(camera: VirtualCamera, frame_id: int, mirror: bool) -> str:
    """Frame `frame_id` as a JPEG data URL (mirrored or not), encoded once for every user that sends it."""
    urls = _data_urls.setdefault(camera, OrderedDict())
    url = urls.get((frame_id, mirror))
    if url is None:
        frame = camera.frame(frame_id)
        if mirror:
            frame = frame[:, ::-1]
        bgr = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        url = urls[frame_id, mirror] = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
        while len(urls) > KEEP_URLS:
            urls.popitem(last=False)
    return url


_DRAINS: set[asyncio.Task[None]] = set()


async def connect_like_a_browser(url: str) -> Any:
    """A `/stream/{event_id}` websocket as the page opens it: no keepalive pings, and every reply read.

    The server answers each frame with {"msg": "success"}; a client that never reads them stops
    reading the socket after a few (websockets' max_queue), its pongs go unread, and its own
    keepalive closes the stream after ~40 s (1011 keepalive ping timeout). The page reads every
    message and sends no pings.
    """
    websocket = await websockets.connect(url, max_size=None, close_timeout=GRACE_S, ping_interval=None)
    drain = asyncio.create_task(_drain(websocket))
    _DRAINS.add(drain)
    drain.add_done_callback(_DRAINS.discard)
    return websocket


async def _drain(websocket: Any) -> None:
    with contextlib.suppress(websockets.WebSocketException, OSError):
        async for _ in websocket:
            pass


class GradioStreamClient:
    async def run(self, camera: VirtualCamera, config: ClientConfig) -> ClientResult:
        result = ClientResult()
        limits = httpx.Limits(max_connections=20 * config.users)
        async with httpx.AsyncClient(timeout=30.0, limits=limits) as http:
            event = await discover_stream_event(http, config.url, **event_choice(config.params))
            result.app_settings["stream_every"] = event.stream_every
            result.app_settings["transform_input"] = "transform" in event.input_labels
            sessions = [
                _Session(user, event, http, camera, config, result, SessionRecord(user)) for user in range(config.users)
            ]
            result.sessions = [s.record for s in sessions]
            await asyncio.gather(*(self._drive(s) for s in sessions))
        return result

    async def _drive(self, session: _Session) -> None:
        record = session.record
        session.t_join = time.perf_counter()
        try:
            await self._send_watched(session)
        except (httpx.HTTPError, OSError, websockets.WebSocketException) as exc:
            await session.broke(f"{type(exc).__name__}: {exc}")
        finally:
            session.closing = True
            if session.event_id and not session.target_down:
                with contextlib.suppress(httpx.HTTPError):
                    await session.http.post(f"{session.event.root}/stream/{session.event_id}/close")
            if session.listener is not None:
                if not session.target_down:  # a stalled target ends no event stream
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(asyncio.shield(session.ended.wait()), GRACE_S)
                session.listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await session.listener
            if session.event_id and not session.target_down:
                await self._release_slot(session)
        if not session.started.is_set() and record.status == "ok":
            record.status = "failed"
            waited = time.perf_counter() - session.t_join
            record.error = f"never started: waited {waited:.1f} s in the queue"
            record.phases_ms["queue_wait_ms"] = waited * 1000

    async def _release_slot(self, session: _Session) -> None:
        """Leave like a closed tab, and make the server notice now rather than in 30 s.

        A stopped stream keeps its concurrency slot while the server waits up to
        30 s (or time_limit) for the next frame; the next user, or our next case,
        would wait that long (BENCHMARKS.md, Findings). With our event stream
        closed the server marks the event dead; one more close wakes its loop.
        """
        await asyncio.sleep(0.2)  # the server polls for a closed event stream every 50 ms
        with contextlib.suppress(httpx.HTTPError):
            await session.http.post(f"{session.event.root}/stream/{session.event_id}/close")

    async def _send_watched(self, session: _Session) -> None:
        """The send loop under the stall watchdog; raises what the send loop raises."""
        sending = asyncio.create_task(self._send_loop(session))
        watching = asyncio.create_task(self._watch(session, sending))
        try:
            await asyncio.wait([sending])
        finally:
            sending.cancel()
            watching.cancel()
            await asyncio.gather(sending, watching, return_exceptions=True)
        if not watching.cancelled() and (exc := watching.exception()):
            session.client_error("stall watchdog", exc)
        if not sending.cancelled():
            sending.result()

    async def _watch(self, session: _Session, sending: asyncio.Task[None]) -> None:
        """While we send, fail the session and cancel `sending` when the target stalls or is gone.

        A send to a target that reads nothing may never return, so the loop cannot check this itself.
        """
        stop_at = session.camera.started + session.config.duration_s
        await session.started.wait()
        last_probe = 0.0
        while not sending.done() and (now := time.perf_counter()) < stop_at:
            silent = now - session.heard_s
            problem = None
            if silent > (STALL_S if session.outputs else FIRST_OUTPUT_TIMEOUT_S):
                session.target_down = True
                problem = f"no output came back for {silent:.1f} s ({stalled(session.config)})"
            elif silent > PROBE_AFTER_S and now - last_probe > PROBE_AFTER_S:
                last_probe = now
                if refused := await session.refused():
                    problem = f"{refused}; no output for {silent:.1f} s"
            if problem:
                session.fail(problem)
                sending.cancel()
                return
            await asyncio.sleep(0.05)

    async def _send_loop(self, session: _Session) -> None:
        camera, config, result = session.camera, session.config, session.result
        stop_at = camera.started + config.duration_s
        interval = session.event.stream_every
        switch_at = config.params.get("switch_at_s")
        websocket = None
        tick = time.perf_counter()
        joined = False
        try:
            while tick < stop_at and not session.ended.is_set() and session.record.status == "ok":
                result.tick_lag_ms.append((time.perf_counter() - tick) * 1000)
                transform = config.transform
                if switch_at is not None and tick - camera.started >= switch_at:
                    transform = config.params["switch_transform"]
                    session.switch_s = session.switch_s or tick
                if not joined:
                    frame_id, payload = self._payload(session, transform)
                    joined = await self._join(session, payload)
                    if not joined:
                        return
                    self._sent(session, frame_id)
                elif session.started.is_set():
                    if websocket is None:
                        websocket = await self._connect(session)
                    frame_id, payload = self._payload(session, transform)
                    message = json.dumps({**payload, "session_hash": session.session_hash})
                    if websocket is not None:
                        await websocket.send(message)
                    else:
                        await session.http.post(f"{session.event.root}/stream/{session.event_id}", content=message)
                    self._sent(session, frame_id)
                tick += interval
                await asyncio.sleep(max(0.0, tick - time.perf_counter()))
        finally:
            if websocket is not None:
                await websocket.close()

    def _sent(self, session: _Session, frame_id: int) -> None:
        """Record a send; `send_to_event_ms` runs from a frame's first send, the one its output answers first."""
        now = time.perf_counter()
        session.sends.setdefault(frame_id, now)
        session.result.sends.append(Send(session.user, frame_id, now))

    def _payload(self, session: _Session, transform: str) -> tuple[int, dict[str, Any]]:
        """The camera's newest frame now, encoded as the browser's timer does when it fires.

        Not the frame of the scheduled tick: a late tick would then send a stale
        frame and the client's own lag would count as the target's latency.
        """
        frame_id, payload = webcam_payload(session.camera, session.event, session.mirror)
        set_input(session.event, payload["data"], "transform", transform)
        set_input(session.event, payload["data"], "delay_ms", session.config.params.get("delay_ms", 0))
        return frame_id, payload

    async def _join(self, session: _Session, payload: dict[str, Any]) -> bool:
        response = await session.http.post(
            f"{session.event.root}/queue/join", json={**payload, "session_hash": session.session_hash}
        )
        if response.status_code != 200:
            session.record.status = "rejected"
            session.record.error = f"queue/join answered {response.status_code}: {response.text[:200]}"
            session.ended.set()
            return False
        session.event_id = response.json().get("event_id")
        # like Gradio's JS client: open the event stream only once the join is registered,
        # an earlier GET finds no pending session and the server drops the stream (404 mid-response)
        session.listener = asyncio.create_task(self._listen(session))
        return True

    async def _connect(self, session: _Session) -> Any:
        ws_url = session.event.root.replace("http", "ws", 1) + f"/stream/{session.event_id}"
        try:
            # a short closing handshake: a stalled target would hold the default 10 s
            return await connect_like_a_browser(ws_url)
        except (OSError, websockets.WebSocketException):
            return None

    async def _listen(self, session: _Session) -> None:
        """Follow the SSE stream: the queue wait, every output (handed to `_outputs`), the end."""
        http, result, record = session.http, session.result, session.record
        streaming_since: float | None = None
        try:
            async with http.stream(
                "GET", f"{session.event.root}/queue/data", params={"session_hash": session.session_hash}, timeout=None
            ) as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    message = json.loads(line[5:])
                    kind = message.get("msg")
                    now = session.heard_s = time.perf_counter()
                    if kind == "process_starts":
                        record.phases_ms["queue_wait_ms"] = (now - session.t_join) * 1000
                        streaming_since = now
                        session.started.set()
                    elif kind in ("process_streaming", "process_generating"):
                        session.outputs += 1
                        self._outputs(session, message.get("output", {}).get("data", []), now)
                    elif kind in ("close_stream", "process_completed"):
                        error = message.get("output", {}).get("error") if not message.get("success", True) else None
                        if error:
                            result.errors.append(f"user {session.user}: {error}")
                        record.phases_ms["stream_ended_ms"] = (now - session.t_join) * 1000
                        break
        except httpx.HTTPError as exc:
            # the server may drop the event stream once we close ours; before that it is a failure
            if not session.closing:
                await session.broke(f"event stream broke: {type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            for task in session.fetches:
                task.cancel()  # an output a stalled target never serves would hold us for the whole HTTP timeout
            raise
        except Exception as exc:
            session.client_error("event stream", exc)
        finally:
            if session.fetches:
                await asyncio.gather(*session.fetches, return_exceptions=True)
            if streaming_since is not None:
                record.received_s = time.perf_counter() - streaming_since
            session.ended.set()

    def _outputs(self, session: _Session, data: list[Any], event_s: float) -> None:
        """An output message: fetch and decode every file it names as the page's <img> would."""
        for url in _file_urls(data, session.config.url):
            task = asyncio.create_task(self._fetch(session, url, event_s))
            session.fetches.add(task)
            task.add_done_callback(session.fetches.discard)

    async def _fetch(self, session: _Session, url: str, event_s: float) -> None:
        try:
            self._show(session, await session.http.get(url), event_s)
        except httpx.HTTPError as exc:
            session.result.errors.append(f"user {session.user}: fetching an output failed: {exc}")
        except Exception as exc:
            session.client_error("output fetch", exc)

    def _show(self, session: _Session, response: httpx.Response, event_s: float) -> None:
        result, record = session.result, session.record
        image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
        done = time.perf_counter()
        if image is not None:
            record.received_frame(image.shape[1], image.shape[0])
            record.received_bytes += len(response.content)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image is not None else None
        if rgb is not None and session.camera.scene_frames:  # a user's app: its outputs may lose the marker
            result.looks.append(OutputLook(session.user, done, signature(rgb)))
        reading = decode_marker(rgb) if rgb is not None else None
        if reading is None:
            result.undecoded += 1
            return
        orientation = unmirror(reading.orientation) if session.mirror else reading.orientation
        result.orientations[orientation] = result.orientations.get(orientation, 0) + 1
        sent = session.sends.get(reading.frame_id)
        stages = {"fetch_ms": (done - event_s) * 1000}
        if sent is not None:
            stages["send_to_event_ms"] = (event_s - sent) * 1000
        result.receipts.append(Receipt(session.user, reading.frame_id, done, stages, orientation))
        if rgb is not None and result.compare_due(session.config.params):
            frame = session.camera.frame(reading.frame_id)
            result.compared(unchanged(rgb, frame[:, ::-1] if session.mirror else frame))  # as sent
        expected_switch = SWITCH_ORIENTATION.get(session.config.params.get("switch_transform") or "", "identity")
        if session.switch_s and orientation == expected_switch and "switch_to_output_ms" not in record.phases_ms:
            record.phases_ms["switch_to_output_ms"] = (done - session.switch_s) * 1000
        record.phases_ms.setdefault("first_output_ms", (done - session.t_join) * 1000)


def _file_urls(data: list[Any], base: str) -> list[str]:
    urls = []
    for value in data:
        if isinstance(value, dict) and value.get("url"):
            url = value["url"]
            urls.append(url if url.startswith("http") else base + url)
    return urls
