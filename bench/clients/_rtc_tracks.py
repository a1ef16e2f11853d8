"""Media pieces of the WebRTC clients: the camera and microphone tracks they send, where their ICE pair ended up,
what they received."""

from __future__ import annotations

import time
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCTransportStats
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, Packet, VideoFrame

from bench.clients._shared_encoder import SharedVp8Encoder
from bench.media.camera import VirtualCamera
from bench.media.marker import LIMITED_RANGE_GAIN
from bench.records import Send

if TYPE_CHECKING:  # the video client need not import scipy for it
    from bench.media.microphone import SpeechMicrophone, VirtualMicrophone

VIDEO_CLOCK = 90_000
AUDIO_PTIME_S = 0.02  # what a browser puts in one Opus packet


class CameraTrack(MediaStreamTrack):
    """Sends every camera frame at its capture time, starting from the newest one when first pulled.

    Frames captured before the session connected were never sent (a browser sends
    what the camera shows now); the track ends after `stop_at`. With a `shared` encoder
    (set once VP8 is negotiated) it returns that encoder's packets, which aiortc only
    packetizes, starting on a keyframe; without one, a frame its sender encodes itself.
    A frame counts as sent when `recv` hands it to aiortc.
    """

    kind = "video"

    def __init__(self, camera: VirtualCamera, user: int, stop_at: float, sends: list[Send]) -> None:
        super().__init__()
        self.camera = camera
        self.user = user
        self.stop_at = stop_at
        self.sends = sends
        self.next_id: int | None = None
        self.shared: SharedVp8Encoder | None = None
        self.in_sync = False  # the shared packets sent so far start on a keyframe and have no gap
        self.asked_keyframe = False

    async def recv(self) -> VideoFrame | Packet:
        if self.next_id is None:
            self.next_id = self.camera.latest_id()
        while True:
            frame_id = self.next_id
            self.next_id += 1
            if self.camera.capture_time(frame_id) > self.stop_at:
                self.stop()
                raise MediaStreamError
            await self.camera.wait_for(frame_id)
            if self.shared is None:
                return self._frame(frame_id)
            packet = await self._shared_packet(self.shared, frame_id)
            if packet is not None:
                self.sends.append(Send(self.user, frame_id, time.perf_counter()))
                return packet

    def _frame(self, frame_id: int) -> VideoFrame:
        frame = VideoFrame.from_ndarray(self.camera.frame(frame_id), format="rgb24")
        frame.pts = round(frame_id * VIDEO_CLOCK / self.camera.fps)
        frame.time_base = Fraction(1, VIDEO_CLOCK)
        self.sends.append(Send(self.user, frame_id, time.perf_counter()))
        return frame

    async def _shared_packet(self, shared: SharedVp8Encoder, frame_id: int) -> Packet | None:
        """The shared encoder's packet of `frame_id` if this user may send it now; None: skip the frame."""
        if not self.in_sync and not self.asked_keyframe:
            shared.request_keyframe()
            self.asked_keyframe = True
        encoded = await shared.frame(frame_id)
        if encoded is None:  # fell behind the packets kept: catch up, and start again from a keyframe
            self.in_sync = self.asked_keyframe = False
            self.next_id = max(self.next_id or 0, self.camera.latest_id())
            return None
        if not self.in_sync:
            if not encoded.keyframe:
                return None
            self.in_sync, self.asked_keyframe = True, False
        return encoded.packet


class MicrophoneTrack(MediaStreamTrack):
    """Sends a microphone in 20 ms s16 mono frames, each as soon as its last sample is captured.

    Like the camera track it starts from the newest sample when first pulled (what
    the microphone hears now) and ends after `stop_at`. What a frame counts as
    sending depends on the microphone: a subclass records it (`sent`).
    """

    kind = "audio"
    microphone: VirtualMicrophone | SpeechMicrophone

    def __init__(self, microphone: VirtualMicrophone | SpeechMicrophone, user: int, stop_at: float) -> None:
        super().__init__()
        self.microphone = microphone
        self.user = user
        self.stop_at = stop_at
        self.samples = round(microphone.sample_rate * AUDIO_PTIME_S)
        self.next_sample: int | None = None

    async def recv(self) -> AudioFrame:
        mic = self.microphone
        if self.next_sample is None:
            self.next_sample = mic.latest_sample()
        start = self.next_sample
        self.next_sample += self.samples
        if mic.sample_time(start) > self.stop_at:
            self.stop()
            raise MediaStreamError
        await mic.wait_until_sample(start + self.samples)
        frame = AudioFrame.from_ndarray(mic.pcm(start, self.samples).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = mic.sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, mic.sample_rate)
        self.sent(start, time.perf_counter())
        return frame

    def sent(self, start: int, now: float) -> None:
        """Record what the frame from sample `start` carried, handed to the encoder at `now`."""
        raise NotImplementedError


class MarkerTrack(MicrophoneTrack):
    """Sends the marker microphone; a marker counts as sent when the frame holding its first sample is.

    One already under way when the track starts goes out in part, unrecorded, and may
    still be read back (its latency is then still exact: the decoder places its start).
    """

    microphone: VirtualMicrophone

    def __init__(self, microphone: VirtualMicrophone, user: int, stop_at: float, sends: list[Send]) -> None:
        super().__init__(microphone, user, stop_at)
        self.sends = sends

    def sent(self, start: int, now: float) -> None:
        markers = self.microphone.marker_at(start, self.samples)
        self.sends.extend(Send(self.user, marker_id, now) for marker_id in markers)


def marker_plane(frame: VideoFrame) -> tuple[np.ndarray, float]:
    """What `decode_marker` reads of a decoded frame, with its gain, converting as little as it can.

    A yuv420p frame (what aiortc's decoders give) lends its luma plane as it is (no copy; the marker
    is grey, so its luma steps are its RGB steps times 219 / 255); other formats are converted to RGB.
    """
    if frame.format.name != "yuv420p":
        return frame.to_ndarray(format="rgb24"), 1.0
    plane = frame.planes[0]
    luma = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    return luma, LIMITED_RANGE_GAIN


def negotiated_codec(pc: RTCPeerConnection, track: MediaStreamTrack) -> str | None:
    """The mime type ("video/VP8") `track`'s sender sends with, once the answer is set (None if unknown)."""
    for transceiver in pc.getTransceivers():
        if transceiver.sender.track is track and transceiver._codecs:
            return transceiver._codecs[0].mimeType
    return None


def forward_keyframe_requests(sender: RTCRtpSender, shared: SharedVp8Encoder) -> None:
    """A receiver's PLI / FIR (aiortc calls `sender._send_keyframe()`) also asks the shared encoder for one."""
    own = sender._send_keyframe

    def send_keyframe() -> None:
        own()
        shared.request_keyframe()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


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


async def media_bytes_received(pc: RTCPeerConnection, kind: str) -> int:
    """Bytes the transport of the `kind` ("audio" / "video") receiver took in so far.

    aiortc's inbound-rtp stats count packets, not bytes, so this is its transport's count: the
    media plus RTCP, and the data channel when bundled (a "handshake" and a few RTCP reports a
    second, well under 1 % of a video stream).
    """
    total = 0
    for receiver in pc.getReceivers():
        if receiver.track.kind == kind:
            report = await receiver.getStats()
            total += sum(stats.bytesReceived for stats in report.values() if isinstance(stats, RTCTransportStats))
    return total
