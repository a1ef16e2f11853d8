"""Media pieces of the WebRTC client: the camera track it sends, where its ICE pair ended up, what it received."""

from __future__ import annotations

import time
from fractions import Fraction

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCTransportStats
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from bench.media.camera import VirtualCamera
from bench.records import Send

VIDEO_CLOCK = 90_000


class CameraTrack(MediaStreamTrack):
    """Sends every camera frame at its capture time, starting from the newest one when first pulled.

    Frames captured before the session connected were never sent (a browser sends
    what the camera shows now); the track ends after `stop_at`.
    """

    kind = "video"

    def __init__(self, camera: VirtualCamera, user: int, stop_at: float, sends: list[Send]) -> None:
        super().__init__()
        self.camera = camera
        self.user = user
        self.stop_at = stop_at
        self.sends = sends
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
        self.sends.append(Send(self.user, frame_id, time.perf_counter()))
        return frame


def selected_candidate_pair(pc: RTCPeerConnection) -> str | None:
    """'local ip:port -> remote ip:port' of the nominated ICE pair (aioice internals; None if unknown)."""
    try:
        for transceiver in pc.getTransceivers():
            ice = transceiver.sender.transport.transport
            pair = ice._connection._nominated.get(1)
            if pair is not None:
                (lhost, lport), (rhost, rport) = pair.local_addr, pair.remote_addr
                return f"{lhost}:{lport} -> {rhost}:{rport}"
    except AttributeError:
        return None
    return None


async def video_bytes_received(pc: RTCPeerConnection) -> int:
    """Bytes the video receiver's transport took in so far.

    aiortc's inbound-rtp stats count packets, not bytes, so this is its transport's count: the
    video plus RTCP, and the data channel when bundled (a "handshake" and a few RTCP reports a
    second, well under 1 % of a video stream).
    """
    total = 0
    for receiver in pc.getReceivers():
        if receiver.track.kind == "video":
            report = await receiver.getStats()
            total += sum(stats.bytesReceived for stats in report.values() if isinstance(stats, RTCTransportStats))
    return total
