"""aiortc client for FastRTC-style WebRTC targets, doing what the browser does.

Per user: a peer connection with a "text" data channel created before the offer
(without it FastRTC returns no frames) that says "handshake" once open, a camera
track sending every frame at the source rate, the offer POSTed to /webrtc/offer,
the transform set through POST /input_hook (the target's route to FastRTC's
`set_input`), and every returned frame decoded for its marker. Set-up phases
are timed from the start of the offer POST, as a user waits for them.

A refused session (`{"status": "failed"}`) is recorded as rejected; a failed
connection, a target that stops returning frames or dies, or any other error is
recorded as a failed session - `run` never raises for them. An exception in our
own receiver fails the session at once as a "streambench client error" and is
kept in `ClientResult.client_errors`, so a harness bug is never reported as a
stalled target.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time

import httpx
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from bench.clients._browser_jitter import release_frames_like_a_browser
from bench.clients._rtc_tracks import CameraTrack, selected_candidate_pair, video_bytes_received
from bench.clients.base import ClientConfig, stalled
from bench.loopback import force_loopback_ice, is_loopback_url, loopback_only_sdp
from bench.media.camera import VirtualCamera
from bench.media.marker import decode_marker
from bench.network.impaired import MediaPath
from bench.records import CLIENT_ERROR, ClientResult, Receipt, SessionRecord

GRACE_S = 1.0  # keep receiving this long after the last measured frame
CONNECT_TIMEOUT_S = 15.0  # answer received -> connectionState "connected"
FIRST_FRAME_TIMEOUT_S = 15.0  # connected -> first returned frame (a model may load on the first call)
STALL_S = 5.0  # no returned frame for this long while sending: the target stalled
PROBE_AFTER_S = 1.0  # no returned frame for this long: check that the target still answers HTTP
HTTP_TIMEOUT_S = 30.0
NO_INPUT_HOOK = "the app has no POST /input_hook route: the transform inputs could not be set"

log = logging.getLogger(__name__)


class WebRTCClient:
    def __init__(self) -> None:
        self.candidate_pairs: dict[int, str | None] = {}  # user -> nominated ICE pair of the last run

    async def run(self, camera: VirtualCamera, config: ClientConfig) -> ClientResult:
        result = ClientResult()
        release_frames_like_a_browser()
        loopback = is_loopback_url(config.url)
        if loopback:
            force_loopback_ice()
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
            sessions = [
                _UserSession(self, http, camera, config, user, result, loopback) for user in range(config.users)
            ]
            await asyncio.gather(*(session.run() for session in sessions))
        return result


class _UserSession:
    """One simulated browser tab: connect, stream for the run's duration, close."""

    def __init__(
        self,
        client: WebRTCClient,
        http: httpx.AsyncClient,
        camera: VirtualCamera,
        config: ClientConfig,
        user: int,
        result: ClientResult,
        loopback: bool,
    ) -> None:
        self.client, self.http, self.camera, self.config = client, http, camera, config
        self.user, self.result, self.loopback = user, result, loopback
        self.url = config.url.rstrip("/")
        self.record = SessionRecord(user)
        result.sessions.append(self.record)
        self.webrtc_id = secrets.token_hex(8)
        self.stop_at = camera.started + config.duration_s
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.settled = asyncio.Event()  # connectionState reached connected, failed or closed
        self.receivers: list[asyncio.Task[None]] = []
        self.t_offer = self.connected_s = self.last_frame_s = self.last_probe_s = 0.0
        self.frames = 0  # returned frames, decoded or not
        self.media_path = MediaPath(config.network, seed=user) if config.network is not None else None

    async def run(self) -> None:
        try:
            if await self._connect():
                await self._stream()
        except Exception as exc:  # whatever goes wrong is this session's result, never the run's crash
            self._fail(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        finally:
            await self._close()

    async def _connect(self) -> bool:
        pc = self.pc
        channel = pc.createDataChannel("text")
        channel.on("open", lambda: channel.send("handshake"))
        pc.on("iceconnectionstatechange", self._on_ice_state)
        pc.on("connectionstatechange", self._on_connection_state)
        pc.on("track", self._on_track)
        # the track keeps sending through the grace period: the target's aiortc receiver releases a
        # frame only when the next one arrives; frames captured after stop_at are not measured
        pc.addTrack(CameraTrack(self.camera, self.user, self.stop_at + GRACE_S, self.result.sends))
        await pc.setLocalDescription(await pc.createOffer())  # aiortc returns once ICE gathering is complete
        self.t_offer = time.perf_counter()
        response = await self.http.post(
            f"{self.url}/webrtc/offer",
            json={"sdp": await self._offer_sdp(), "type": "offer", "webrtc_id": self.webrtc_id},
        )
        self._phase("offer_ms")
        if response.status_code != 200:
            self._fail(f"POST /webrtc/offer answered HTTP {response.status_code}: {response.text[:200]}")
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
        # set the inputs while ICE and DTLS run, so the first returned frame is already transformed
        await self._set_inputs()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.settled.wait(), CONNECT_TIMEOUT_S)
        if pc.connectionState != "connected":
            self._fail(f"not connected (ICE {pc.iceConnectionState}, connection {pc.connectionState})")
            return False
        pair = self.client.candidate_pairs[self.user] = selected_candidate_pair(pc)
        log.debug("user %d connected over %s", self.user, pair)
        return True

    async def _set_inputs(self) -> None:
        inputs = {
            "webrtc_id": self.webrtc_id,
            "transform": self.config.transform,
            "delay_ms": self.config.params.get("delay_ms", 0),
        }
        response = await self.http.post(f"{self.url}/input_hook", json=inputs)
        self.result.app_settings["transform_input"] = response.status_code == 200
        if response.status_code == 404:
            if NO_INPUT_HOOK not in self.result.warnings:
                self.result.warnings.append(NO_INPUT_HOOK)
        elif response.status_code != 200:
            self.result.errors.append(
                f"user {self.user}: POST /input_hook answered HTTP {response.status_code}: {response.text[:200]}"
            )

    async def _stream(self) -> None:
        end = self.stop_at + GRACE_S
        while (now := time.perf_counter()) < end and self.pc.connectionState == "connected" and self._healthy:
            if now < self.stop_at and (problem := await self._stalled(now)):
                self._fail(problem)
                return
            await asyncio.sleep(0.05)
        if self.pc.connectionState == "failed":
            self._fail(f"connection failed {now - self.t_offer:.1f} s after the offer")
        elif self.pc.connectionState != "connected" and now < self.stop_at:
            self.record.phases_ms["closed_by_server_ms"] = (now - self.t_offer) * 1000
        if self.frames == 0:
            self._fail("connected, but no video frame came back")

    async def _stalled(self, now: float) -> str | None:
        """Why the target seems stuck or gone, if it does: silent too long, or its HTTP port refuses."""
        silent = now - (self.last_frame_s or self.connected_s)
        limit = STALL_S if self.frames else FIRST_FRAME_TIMEOUT_S
        if silent > limit:
            return f"no video frame came back for {silent:.1f} s ({stalled(self.config)})"
        if silent > PROBE_AFTER_S and now - self.last_probe_s > PROBE_AFTER_S:
            self.last_probe_s = now
            try:
                await self.http.get(f"{self.url}/", timeout=1.0)
            except httpx.ConnectError as exc:
                return f"target stopped answering ({exc}); no video frame for {silent:.1f} s"
            except httpx.HTTPError:
                pass  # slow or odd, but there: let STALL_S decide
        return None

    async def _receive(self, track: MediaStreamTrack) -> None:
        """Take every returned frame until the track ends; a bug of ours fails the session as ours.

        Left silent, a broken receiver stops counting frames and the stall check blames the target.
        """
        try:
            while True:
                self._on_frame(await track.recv())
        except MediaStreamError:
            return
        except Exception as exc:
            self._fail(f"{CLIENT_ERROR}: {self.result.add_client_error(f'user {self.user} video receiver', exc)}")

    def _on_frame(self, frame: VideoFrame) -> None:
        done = time.perf_counter()
        self.frames += 1
        self.last_frame_s = done
        self.record.received_frame(frame.width, frame.height)
        reading = decode_marker(frame.to_ndarray(format="rgb24"))
        if reading is None:
            self.result.undecoded += 1
            return
        self._phase("first_frame_ms")
        orientations = self.result.orientations
        orientations[reading.orientation] = orientations.get(reading.orientation, 0) + 1
        self.result.receipts.append(Receipt(self.user, reading.frame_id, done, orientation=reading.orientation))

    def _on_ice_state(self) -> None:
        if self.pc.iceConnectionState in ("connected", "completed"):
            self._phase("ice_connected_ms")

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self._phase("connected_ms")
            self.connected_s = time.perf_counter()
        if state in ("connected", "failed", "closed"):
            self.settled.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self.receivers.append(asyncio.create_task(self._receive(track)))

    @property
    def _healthy(self) -> bool:
        """Nothing failed yet; a failed receiver ends the stream at once instead of at the stall timeout."""
        return self.record.status == "ok"

    def _phase(self, name: str) -> None:
        self.record.phases_ms.setdefault(name, (time.perf_counter() - self.t_offer) * 1000)

    def _fail(self, error: str) -> None:
        if self.record.status == "ok":
            self.record.status = "failed"
            self.record.error = error
            self.result.errors.append(f"user {self.user}: {error}")

    async def _offer_sdp(self) -> str:
        """Behind a network profile the server must reach us only through relays."""
        sdp = self.pc.localDescription.sdp
        return await self.media_path.offer(sdp) if self.media_path is not None else sdp

    async def _close(self) -> None:
        for task in self.receivers:
            task.cancel()
        await asyncio.gather(*self.receivers, return_exceptions=True)
        if self.connected_s:
            self.record.received_bytes = await video_bytes_received(self.pc)
            self.record.received_s = time.perf_counter() - self.connected_s
        with contextlib.suppress(Exception):
            await self.pc.close()
        if self.media_path is not None:
            await self.media_path.close()
            self.result.network_stats += self.media_path.stats
