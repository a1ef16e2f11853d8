"""Client for FastRTC's WebSocket audio transport (`/websocket/offer`, fastrtc 0.0.34 `websocket.py`).

The protocol, per user: {"event": "start", "websocket_id": id}, then every 20 ms
{"event": "media", "media": {"payload": base64 mu-law}} of the microphone, paced in
real time from its clock at the handler's input rate (48 kHz: this path does not
resample), and {"event": "stop"} at the end. The server sends the handler's output
back in the same "media" shape, mu-law at the handler's output rate, which this
client reads as 48 kHz (our target's; a handler left at fastrtc's 24 kHz default
yields no markers, and a warning says why). A refusal is {"status": "failed",
"meta": {"error"}} followed by a close; the handler's data-channel messages
({"type", "data"}) and pongs share the socket and are ignored.

Markers are timed as over WebRTC (`_audio_receipts`): sent when the chunk holding
a marker's first sample is sent, received when the message holding it arrives plus
the sample's offset in it. fastrtc's emit loop sleeps 20 ms after every item it
sends, so with 20 ms chunks its output falls behind the input: the case's
`growth_ms_per_s` shows that backlog.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time

import websockets

from bench.clients._audio_receipts import AudioReceipts
from bench.clients.base import ClientConfig, stalled
from bench.media.audio_marker import SAMPLE_RATE, mulaw_decode, mulaw_encode
from bench.media.microphone import VirtualMicrophone
from bench.records import CLIENT_ERROR, ClientResult, Send, SessionRecord

GRACE_S = 1.0  # keep sending and receiving this long after the last measured marker
CHUNK_S = 0.02  # audio per message, as a browser's 20 ms capture buffers
CONNECT_TIMEOUT_S = 15.0
FIRST_MEDIA_TIMEOUT_S = 15.0  # connected -> first returned audio (a model may load on the first call)
STALL_S = 5.0  # no audio back for this long while sending: the target stalled
NO_MARKERS = (
    "audio came back but no marker was read: the client reads returned mu-law as {rate} Hz; "
    "a handler with another output_sample_rate (fastrtc's default is 24000) is not supported"
)


class FastRTCWebSocketClient:
    async def run(self, camera: VirtualMicrophone, config: ClientConfig) -> ClientResult:
        """`camera` is the case's source: a virtual microphone (the runner's name for every source)."""
        result = ClientResult()
        sessions = [_WebSocketSession(camera, config, user, result) for user in range(config.users)]
        await asyncio.gather(*(session.run() for session in sessions))
        result.metrics["audio_arrival_jitter_ms"] = [ms for s in sessions for ms in s.audio.arrival_jitter_ms()]
        if any(s.chunks for s in sessions) and not result.receipts:
            result.warnings.append(NO_MARKERS.format(rate=SAMPLE_RATE))
        return result


class _WebSocketSession:
    """One browser tab on the WebSocket: connect, start, stream the microphone, stop."""

    def __init__(self, mic: VirtualMicrophone, config: ClientConfig, user: int, result: ClientResult) -> None:
        self.mic, self.config, self.user, self.result = mic, config, user, result
        self.url = config.url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        self.record = SessionRecord(user)
        result.sessions.append(self.record)
        self.websocket_id = secrets.token_hex(8)
        self.stop_at = mic.started + config.duration_s
        self.audio = AudioReceipts(user, result.receipts, mic.sample_rate)
        self.t_connect = self.started_s = self.last_media_s = 0.0
        self.chunks = 0  # returned media messages
        self.received_bytes = 0  # mu-law payload bytes

    async def run(self) -> None:
        self.t_connect = time.perf_counter()
        try:
            ws = await websockets.connect(
                f"{self.url}/websocket/offer", max_size=None, open_timeout=CONNECT_TIMEOUT_S, close_timeout=GRACE_S
            )
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            self._fail(f"cannot open {self.url}/websocket/offer: {type(exc).__name__}: {exc}")
            return
        try:
            self._phase("connected_ms")
            await ws.send(json.dumps({"event": "start", "websocket_id": self.websocket_id}))
            self.started_s = time.perf_counter()
            receiver = asyncio.create_task(self._receive(ws))
            sender = asyncio.create_task(self._send(ws))
            await self._watch(receiver)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            with contextlib.suppress(websockets.WebSocketException):
                await ws.send(json.dumps({"event": "stop"}))
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
        except Exception as exc:  # whatever goes wrong is this session's result, never the run's crash
            self._fail(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        finally:
            await ws.close()
            self.record.received_bytes = self.received_bytes
            self.record.received_s = time.perf_counter() - self.started_s if self.started_s else None

    async def _send(self, ws: websockets.ClientConnection) -> None:
        """The microphone in 20 ms chunks, each as soon as its last sample is captured (late ones catch up).

        A closed socket ends it quietly (the receiver tells why); a bug of ours fails the session as ours.
        """
        try:
            await self._send_chunks(ws)
        except websockets.ConnectionClosed:
            return
        except Exception as exc:
            self._fail(f"{CLIENT_ERROR}: {self.result.add_client_error(f'user {self.user} audio sender', exc)}")

    async def _send_chunks(self, ws: websockets.ClientConnection) -> None:
        mic = self.mic
        count = round(mic.sample_rate * CHUNK_S)
        start = mic.latest_sample()
        while mic.sample_time(start) <= self.stop_at + GRACE_S:
            await mic.wait_until_sample(start + count)
            payload = base64.b64encode(mulaw_encode(mic.pcm(start, count))).decode("ascii")
            await ws.send(json.dumps({"event": "media", "media": {"payload": payload}}))
            now = time.perf_counter()
            self.result.sends.extend(Send(self.user, marker_id, now) for marker_id in mic.marker_at(start, count))
            start += count

    async def _receive(self, ws: websockets.ClientConnection) -> None:
        """Every message until the socket closes; a bug of ours fails the session as ours, not as a stall."""
        try:
            async for message in ws:
                arrival = time.perf_counter()
                data = json.loads(message)
                if data.get("status") == "failed":
                    self.record.status = "rejected"
                    self.record.error = str((data.get("meta") or {}).get("error") or "failed")
                elif data.get("event") == "media":
                    self._on_media(data["media"]["payload"], arrival)
        except websockets.ConnectionClosedOK:
            return
        except websockets.ConnectionClosedError as exc:
            self._fail(f"the WebSocket broke off ({exc}): the target died or dropped the connection")
        except Exception as exc:
            self._fail(f"{CLIENT_ERROR}: {self.result.add_client_error(f'user {self.user} audio receiver', exc)}")

    def _on_media(self, payload: str, arrival: float) -> None:
        mulaw = base64.b64decode(payload)
        self.chunks += 1
        self.received_bytes += len(mulaw)
        self.last_media_s = arrival
        if self.audio.feed(mulaw_decode(mulaw), arrival):
            self._phase("first_output_ms")

    async def _watch(self, receiver: asyncio.Task[None]) -> None:
        """Until the run's end plus grace: stop early if the socket closed, we failed, or the target went silent."""
        end = self.stop_at + GRACE_S
        while (now := time.perf_counter()) < end and not receiver.done() and self.record.status == "ok":
            silent = now - (self.last_media_s or self.started_s)
            limit = STALL_S if self.chunks else FIRST_MEDIA_TIMEOUT_S
            if now < self.stop_at and silent > limit:
                self._fail(f"no audio came back for {silent:.1f} s ({stalled(self.config)})")
                return
            await asyncio.sleep(0.05)
        if receiver.done() and self.record.status == "ok" and now < self.stop_at:
            self.record.phases_ms["closed_by_server_ms"] = (now - self.t_connect) * 1000
        if self.chunks == 0 and self.record.status == "ok":
            self._fail("connected, but no audio came back")

    def _phase(self, name: str) -> None:
        self.record.phases_ms.setdefault(name, (time.perf_counter() - self.t_connect) * 1000)

    def _fail(self, error: str) -> None:
        if self.record.status == "ok":
            self.record.status = "failed"
            self.record.error = error
            self.result.errors.append(f"user {self.user}: {error}")
