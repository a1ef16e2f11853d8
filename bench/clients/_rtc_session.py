"""One simulated browser tab over FastRTC-style WebRTC, whatever media it sends (the base of the video, audio and
voice clients).

What the browser does: a "text" data channel created before the offer (without
it FastRTC returns no media) that says "handshake" once open, the local track,
the offer with a `webrtc_id`, then streaming until the run's end plus a grace
period. The offer goes where the page would send it, chosen once per run: a
Gradio app holding fastrtc's `WebRTC` component of the session's media kind
(`stream.ui.launch()`) gets the component's own calls (`fastrtc_gradio`: turn,
offer, and the `tick` event that runs `set_input` with the extra inputs, which
a subclass may set by label in `inputs`); anything else gets POST /webrtc/offer
(a `Stream` mounted on FastAPI). Set-up phases are timed from the session's
first request (the offer; the turn on the component route), as a user waits
for them. A subclass says what it sends (`local_track`), what it makes of each
returned frame (`on_media`), and may use the wait for ICE and DTLS (`answered`).

A refused session (`{"status": "failed"}`) is recorded as rejected; a failed
connection, a target that stops returning media or dies, or any other error is
recorded as a failed session - `run` never raises for them. An exception in our
own receiver fails the session at once as a "streambench client error" and is
kept in `ClientResult.client_errors`, so a harness bug is never reported as a
stalled target.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any, TypeVar

import httpx
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from bench.clients._rtc_tracks import media_bytes_received, selected_candidate_pair
from bench.clients.base import ClientConfig, stalled
from bench.clients.fastrtc_gradio import WebRTCComponent, call_server, find_webrtc_component, tick
from bench.loopback import force_loopback_ice, is_loopback_url, loopback_only_sdp
from bench.network.impaired import MediaPath
from bench.records import CLIENT_ERROR, ClientResult, SessionRecord

GRACE_S = 1.0  # keep sending and receiving this long after the last measured sample
CONNECT_TIMEOUT_S = 15.0  # answer received -> connectionState "connected"
FIRST_MEDIA_TIMEOUT_S = 15.0  # connected -> first returned frame (a model may load on the first call)
STALL_S = 5.0  # nothing returned for this long while sending: the target stalled
PROBE_AFTER_S = 1.0  # nothing returned for this long: check that the target still answers HTTP
HTTP_TIMEOUT_S = 30.0
QUIT_TIMEOUT_S = 1.0  # the audio page's parting quit_output_stream call: a courtesy, never worth a stall

log = logging.getLogger(__name__)
S = TypeVar("S", bound="RTCSession")


class RTCSession:
    """Connect, stream for the run's duration, close; subclasses fill in the media."""

    kind: str  # the media kind sent and received: "audio" or "video"
    noun: str  # what comes back, for messages ("audio", "video frame")

    def __init__(
        self,
        http: httpx.AsyncClient,
        source: Any,
        config: ClientConfig,
        user: int,
        result: ClientResult,
        loopback: bool,
        candidate_pairs: dict[int, str | None],
        component: WebRTCComponent | None,
    ) -> None:
        self.http, self.source, self.config = http, source, config
        self.user, self.result, self.loopback = user, result, loopback
        self.candidate_pairs = candidate_pairs
        self.component = component  # None: POST /webrtc/offer
        self.session_hash = secrets.token_hex(6)  # the Gradio page's: one per tab
        self.inputs: dict[str, Any] = {}  # extra input label -> value the tick sends (component route)
        self.ticking: asyncio.Task[None] | None = None
        self.url = config.url.rstrip("/")
        self.record = SessionRecord(user)
        result.sessions.append(self.record)
        self.webrtc_id = secrets.token_hex(8)
        self.stop_at = source.started + config.duration_s
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.settled = asyncio.Event()  # connectionState reached connected, failed or closed
        self.receivers: list[asyncio.Task[None]] = []
        self.t_offer = self.connected_s = self.last_media_s = self.last_probe_s = 0.0
        self.frames = 0  # returned frames, read or not
        self.media_path = MediaPath(config.network, seed=user) if config.network is not None else None

    def local_track(self) -> MediaStreamTrack:
        """The track sent; it keeps sending through the grace period (a receiver may hold a frame until the next)."""
        raise NotImplementedError

    def on_media(self, frame: Any) -> None:
        """Read one returned frame (called as soon as it is received)."""
        raise NotImplementedError

    async def answered(self) -> None:
        """The answer is set and ICE and DTLS are under way: time a subclass may use (nothing by default)."""

    async def run(self) -> None:
        try:
            if await self._connect():
                await self._stream()
        except Exception as exc:  # whatever goes wrong is this session's result, never the run's crash
            self.fail(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        finally:
            await self._close()

    def phase(self, name: str) -> None:
        self.record.phases_ms.setdefault(name, (time.perf_counter() - self.t_offer) * 1000)

    def fail(self, error: str) -> None:
        if self.record.status == "ok":
            self.record.status = "failed"
            self.record.error = error
            self.result.errors.append(f"user {self.user}: {error}")

    async def _connect(self) -> bool:
        pc = self.pc
        channel = pc.createDataChannel("text")
        channel.on("open", lambda: channel.send("handshake"))
        pc.on("iceconnectionstatechange", self._on_ice_state)
        pc.on("connectionstatechange", self._on_connection_state)
        pc.on("track", self._on_track)
        pc.addTrack(self.local_track())
        if self.component is not None:
            channel.on("message", self._on_channel_message)
            self.t_offer = time.perf_counter()
            # the page asks for its RTC configuration first; ours stays without ICE servers (loopback or not)
            turn = await call_server(self.http, self.component, self.session_hash, "turn", [])
            self.phase("turn_ms")
            if turn.status_code != 200:  # the page stops there too
                self.fail(f"the component server's turn answered HTTP {turn.status_code}: {turn.text[:200]}")
                return False
        await pc.setLocalDescription(await pc.createOffer())  # aiortc returns once ICE gathering is complete
        self.t_offer = self.t_offer or time.perf_counter()
        offer = {"sdp": await self._offer_sdp(), "type": "offer", "webrtc_id": self.webrtc_id}
        if self.component is None:
            route, response = "POST /webrtc/offer", await self.http.post(f"{self.url}/webrtc/offer", json=offer)
        else:
            route = "the component server's offer"
            response = await call_server(self.http, self.component, self.session_hash, "offer", offer)
        self.phase("offer_ms")
        if response.status_code != 200:
            self.fail(f"{route} answered HTTP {response.status_code}: {response.text[:200]}")
            return False
        answer = response.json()
        if answer.get("status") == "failed":
            self.record.status = "rejected"
            self.record.error = str((answer.get("meta") or {}).get("error") or "failed")
            return False
        sdp = loopback_only_sdp(answer["sdp"]) if self.loopback else answer["sdp"]
        if self.media_path is not None:
            sdp = await self.media_path.answer(sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=answer["type"]))
        await self.answered()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.settled.wait(), CONNECT_TIMEOUT_S)
        if pc.connectionState != "connected":
            self.fail(f"not connected (ICE {pc.iceConnectionState}, connection {pc.connectionState})")
            return False
        pair = self.candidate_pairs[self.user] = selected_candidate_pair(pc)
        log.debug("user %d connected over %s", self.user, pair)
        return True

    async def _stream(self) -> None:
        end = self.stop_at + GRACE_S
        while (now := time.perf_counter()) < end and self.pc.connectionState == "connected" and self._healthy:
            if now < self.stop_at and (problem := await self._stalled(now)):
                self.fail(problem)
                return
            await asyncio.sleep(0.05)
        if self.pc.connectionState == "failed":
            self.fail(f"connection failed {now - self.t_offer:.1f} s after the offer")
        elif self.pc.connectionState != "connected" and now < self.stop_at:
            self.record.phases_ms["closed_by_server_ms"] = (now - self.t_offer) * 1000
        if self.frames == 0:
            self.fail(f"connected, but no {self.noun} came back")

    async def _stalled(self, now: float) -> str | None:
        """Why the target seems stuck or gone, if it does: silent too long, or its HTTP port refuses."""
        silent = now - (self.last_media_s or self.connected_s)
        limit = STALL_S if self.frames else FIRST_MEDIA_TIMEOUT_S
        if silent > limit:
            return f"no {self.noun} came back for {silent:.1f} s ({stalled(self.config)})"
        return await self._probe(now, silent, f"no {self.noun}")

    async def _probe(self, now: float, silent: float, missing: str) -> str | None:
        """After PROBE_AFTER_S of silence, at most that often: is the target gone (its HTTP port refuses)?

        A dead target is then reported at once instead of at the stall limit.
        """
        if silent > PROBE_AFTER_S and now - self.last_probe_s > PROBE_AFTER_S:
            self.last_probe_s = now
            try:
                await self.http.get(f"{self.url}/", timeout=1.0)
            except httpx.ConnectError as exc:
                return f"target stopped answering ({exc}); {missing} for {silent:.1f} s"
            except httpx.HTTPError:
                pass  # slow or odd, but there: let the stall limit decide
        return None

    async def _receive(self, track: MediaStreamTrack) -> None:
        """Take every returned frame until the track ends; a bug of ours fails the session as ours.

        Left silent, a broken receiver stops counting frames and the stall check blames the target.
        """
        try:
            while True:
                frame = await track.recv()
                self.frames += 1
                self.last_media_s = time.perf_counter()
                self.on_media(frame)
        except MediaStreamError:
            return
        except Exception as exc:
            where = f"user {self.user} {self.kind} receiver"
            self.fail(f"{CLIENT_ERROR}: {self.result.add_client_error(where, exc)}")

    def _on_ice_state(self) -> None:
        if self.pc.iceConnectionState in ("connected", "completed"):
            self.phase("ice_connected_ms")

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self.phase("connected_ms")
            self.connected_s = time.perf_counter()
            if self.component is not None and self.component.modality == "video":
                self._tick()  # the webcam component ticks once connected; the audio one only when asked
        if state in ("connected", "failed", "closed"):
            self.settled.set()

    def _on_channel_message(self, message: str | bytes) -> None:
        """The server asks for the inputs (`send_input`): the page answers with a tick."""
        with contextlib.suppress(ValueError, TypeError):
            message = json.loads(message)
        if isinstance(message, dict) and message.get("type") == "send_input":
            self._tick()

    def _tick(self) -> None:
        """Run the component's tick (`set_input`) unless one is pending: its trigger mode is "once"."""
        if self.component is None or self.component.tick_fn_index is None:
            return
        if self.ticking is None or self.ticking.done():
            self.ticking = asyncio.create_task(self._run_tick(self.component))

    async def _run_tick(self, component: WebRTCComponent) -> None:
        data = component.tick_data(self.webrtc_id, self.inputs)
        try:
            error = await tick(self.http, component, self.session_hash, data)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            self.phase("inputs_set_ms")
        else:
            self.result.errors.append(f"user {self.user}: the tick that runs set_input failed: {error}")

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == self.kind:
            self.receivers.append(asyncio.create_task(self._receive(track)))

    @property
    def _healthy(self) -> bool:
        """Nothing failed yet; a failed receiver ends the stream at once instead of at the stall timeout."""
        return self.record.status == "ok"

    async def _offer_sdp(self) -> str:
        """Behind a network profile the server must reach us only through relays."""
        sdp = self.pc.localDescription.sdp
        return await self.media_path.offer(sdp) if self.media_path is not None else sdp

    async def _close(self) -> None:
        tasks = [*self.receivers, *([self.ticking] if self.ticking else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.connected_s:
            self.record.received_bytes = await media_bytes_received(self.pc, self.kind)
            self.record.received_s = time.perf_counter() - self.connected_s
        with contextlib.suppress(Exception):
            await self.pc.close()
        if self.component is not None and self.component.modality == "audio" and self.connected_s:
            with contextlib.suppress(httpx.HTTPError):
                data = {"webrtc_id": self.webrtc_id}
                await asyncio.wait_for(
                    call_server(self.http, self.component, self.session_hash, "quit_output_stream", data),
                    QUIT_TIMEOUT_S,
                )
        if self.media_path is not None:
            await self.media_path.close()
            self.result.network_stats += self.media_path.stats


async def run_sessions(
    session_type: type[S],
    source: Any,
    config: ClientConfig,
    result: ClientResult,
    candidate_pairs: dict[int, str | None],
) -> Sequence[S]:
    """One session per user, all at once, ICE kept on 127.0.0.1 when the target is; returns them when all ended.

    The signalling route is chosen once, before any session starts: the app's Gradio WebRTC component of
    `session_type.kind` if it serves one, else POST /webrtc/offer.
    """
    loopback = is_loopback_url(config.url)
    if loopback:
        force_loopback_ice()
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
        component = await find_webrtc_component(http, config.url.rstrip("/"), session_type.kind)
        result.app_settings["signalling"] = "POST /webrtc/offer" if component is None else "Gradio component server"
        sessions = [
            session_type(http, source, config, user, result, loopback, candidate_pairs, component)
            for user in range(config.users)
        ]
        await asyncio.gather(*(session.run() for session in sessions))
    return sessions
