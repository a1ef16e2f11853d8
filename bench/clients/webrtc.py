"""aiortc client for FastRTC-style WebRTC targets, doing what the browser does.

Per user: a peer connection with a "text" data channel created before the offer
(without it FastRTC returns no frames), a camera track sending every frame at
the source rate, the offer POSTed to /webrtc/offer, the transform set through
/input_hook (FastRTC's `set_input`), and every returned frame decoded for its
marker. Set-up phases are timed from the offer POST, as a user waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from fractions import Fraction

import httpx
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from bench.clients._browser_jitter import release_frames_like_a_browser
from bench.clients.base import ClientConfig
from bench.loopback import force_loopback_ice, is_loopback_url, loopback_only_sdp
from bench.media.camera import VirtualCamera
from bench.media.marker import decode_marker
from bench.records import ClientResult, Receipt, Send, SessionRecord

GRACE_S = 1.0
CONNECT_TIMEOUT_S = 15.0
VIDEO_CLOCK = 90_000


class CameraTrack(MediaStreamTrack):
    """Sends camera frame i at its capture time, from the newest frame when first pulled."""

    kind = "video"

    def __init__(self, camera: VirtualCamera, user: int, stop_at: float, result: ClientResult) -> None:
        super().__init__()
        self.camera = camera
        self.user = user
        self.stop_at = stop_at
        self.result = result
        self.next_id: int | None = None

    async def recv(self) -> VideoFrame:
        if self.next_id is None:
            self.next_id = self.camera.latest_id()
        frame_id = self.next_id
        self.next_id += 1
        if self.camera.capture_time(frame_id) > self.stop_at:
            self.stop()
            raise MediaStreamError
        await self.camera.wait_for(frame_id)
        frame = VideoFrame.from_ndarray(self.camera.frame(frame_id), format="rgb24")
        frame.pts = round(frame_id * VIDEO_CLOCK / self.camera.fps)
        frame.time_base = Fraction(1, VIDEO_CLOCK)
        self.result.sends.append(Send(self.user, frame_id, time.perf_counter()))
        return frame


class WebRTCClient:
    async def run(self, camera: VirtualCamera, config: ClientConfig) -> ClientResult:
        result = ClientResult()
        release_frames_like_a_browser()
        loopback = is_loopback_url(config.url)
        if loopback:
            force_loopback_ice()
        async with httpx.AsyncClient(timeout=30.0) as http:
            await asyncio.gather(
                *(self._session(http, camera, config, user, result, loopback) for user in range(config.users))
            )
        return result

    async def _session(
        self,
        http: httpx.AsyncClient,
        camera: VirtualCamera,
        config: ClientConfig,
        user: int,
        result: ClientResult,
        loopback: bool,
    ) -> None:
        record = SessionRecord(user)
        result.sessions.append(record)
        stop_at = camera.started + config.duration_s
        webrtc_id = secrets.token_hex(8)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        connected = asyncio.Event()
        receivers: list[asyncio.Task[None]] = []
        t_offer = 0.0

        def phase(name: str) -> None:
            record.phases_ms.setdefault(name, (time.perf_counter() - t_offer) * 1000)

        channel = pc.createDataChannel("text")
        channel.on("open", lambda: channel.send("handshake"))

        @pc.on("iceconnectionstatechange")
        def on_ice() -> None:
            if pc.iceConnectionState in ("connected", "completed"):
                phase("ice_connected_ms")

        @pc.on("connectionstatechange")
        def on_connection() -> None:
            if pc.connectionState == "connected":
                phase("connected_ms")
                connected.set()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                receivers.append(asyncio.create_task(self._receive(track, user, result, phase)))

        # keep sending through the grace period: receivers' jitter buffers release a frame only
        # once the next one arrives, and frames after stop_at are not counted anyway
        pc.addTrack(CameraTrack(camera, user, stop_at + GRACE_S, result))
        try:
            await pc.setLocalDescription(await pc.createOffer())
            t_offer = time.perf_counter()
            response = await http.post(
                f"{config.url}/webrtc/offer",
                json={"sdp": pc.localDescription.sdp, "type": "offer", "webrtc_id": webrtc_id},
            )
            phase("offer_ms")
            answer = response.json()
            if response.status_code != 200 or answer.get("status") == "failed":
                record.status = "rejected"
                record.error = str(answer.get("meta", {}).get("error") or f"HTTP {response.status_code}")
                return
            sdp = loopback_only_sdp(answer["sdp"]) if loopback else answer["sdp"]
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=answer["type"]))
            hook = await http.post(
                f"{config.url}/input_hook",
                json={
                    "webrtc_id": webrtc_id,
                    "transform": config.transform,
                    "delay_ms": config.params.get("delay_ms", 0),
                },
            )
            if hook.status_code == 404:
                result.errors.append("the app has no /input_hook route: transform inputs could not be set")
            await asyncio.wait_for(connected.wait(), CONNECT_TIMEOUT_S)
            while time.perf_counter() < stop_at + GRACE_S and pc.connectionState == "connected":
                await asyncio.sleep(0.05)
            if pc.connectionState != "connected" and time.perf_counter() < stop_at:
                record.phases_ms["closed_by_server_ms"] = (time.perf_counter() - t_offer) * 1000
        except (TimeoutError, httpx.HTTPError, ValueError, KeyError, OSError) as exc:
            record.status = "failed"
            record.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            result.errors.append(f"user {user}: {record.error}")
        finally:
            for task in receivers:
                task.cancel()
            await asyncio.gather(*receivers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await pc.close()

    async def _receive(self, track: MediaStreamTrack, user: int, result: ClientResult, phase) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            done = time.perf_counter()
            reading = decode_marker(frame.to_ndarray(format="rgb24"))
            if reading is None:
                result.undecoded += 1
                continue
            phase("first_frame_ms")
            result.orientations[reading.orientation] = result.orientations.get(reading.orientation, 0) + 1
            result.receipts.append(Receipt(user, reading.frame_id, done))
