"""One VP8 encoding of the virtual camera, shared by every WebRTC user of a case.

Each user's aiortc `RTCRtpSender` would otherwise render and encode the same camera frame
again (libvpx was ~45 % of the harness's CPU at 10 users). Here each frame is rendered
once and encoded once, in order, in one worker thread (as aiortc encodes in an executor),
into an `av.Packet`; a user's `CameraTrack` returns that packet and aiortc's sender only
packetizes it (`RTCRtpSender._next_encoded_frame` -> `Vp8Encoder.pack`).

What a shared stream must keep true for every receiver:
- each user's stream starts on a keyframe: a new subscriber asks for one and skips frames
  until it gets it;
- a receiver's PLI / FIR (aiortc's `sender._send_keyframe()`) makes the next encoded frame a
  keyframe, for every user (one keyframe for all instead of one per user);
- every user sends the encoder's output in order without gaps (each inter frame refers to the
  previous one); a user that fell behind the packets kept here resynchronises on a keyframe.

The same libvpx settings as aiortc's `Vp8Encoder` (realtime, cpu-used -6, lag 0, CBR) at a
fixed bitrate. Per user, aiortc follows the receiver's REMB: against our aiortc-echo target on
loopback it starts at 500 kbps and climbs ~8 % a second until aiortc's cap, 1.5 Mbps (640x480@30
reached it after ~19 s; at 320x240@15 the encoder used only ~450 kbps of its 0.8 Mbps target
after 20 s: the scene needs no more). The shared encoder runs at that settled value, the cap.
A case with a network profile keeps one encoder per user (the client's choice, not this
module's): there aiortc's adaptation to the REMB of an impaired link is what is measured.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

import av
from aiortc.codecs.vpx import MAX_BITRATE, number_of_threads
from av import VideoFrame
from av.video.frame import PictureType

from bench.media.camera import VirtualCamera

VIDEO_CLOCK = 90_000  # RTP's video clock: a packet's pts counts in it, as CameraTrack's frames do
BITRATE = MAX_BITRATE  # what a per-user aiortc encoder settles at on loopback (see the module docstring)
KEEP_S = 2.0  # packets kept for users that lag behind the newest frame


@dataclass(frozen=True)
class EncodedFrame:
    frame_id: int
    packet: av.Packet | None  # None: libvpx emitted nothing for this frame (the next refers to the one before)
    keyframe: bool


class SharedVp8Encoder:
    """Frames of one camera, each encoded once for every user that asks for it (`packet`)."""

    def __init__(self, camera: VirtualCamera, bitrate: int = BITRATE, keep_s: float = KEEP_S) -> None:
        self.camera = camera
        self.bitrate = bitrate
        self.keep = max(8, round(keep_s * camera.fps))
        self.encoded = 0  # frames encoded (the count a test compares with the frames sent)
        self.keyframes = 0
        self._codec: av.VideoCodecContext | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="shared-vp8")  # one thread: encodes stay in order
        self._frames: OrderedDict[int, asyncio.Future[EncodedFrame]] = OrderedDict()
        self._next: int | None = None  # the next frame id to encode
        self._keyframe_due = True

    def request_keyframe(self) -> None:
        """Make the next frame scheduled a keyframe (a new subscriber, or a receiver's PLI / FIR)."""
        self._keyframe_due = True

    async def frame(self, frame_id: int) -> EncodedFrame | None:
        """Frame `frame_id` encoded; None if it is older than the frames kept (the caller lost the chain).

        Frames between the last one encoded and `frame_id` are encoded too, in order, so a user still
        on an earlier frame finds it; after a longer pause the encoder jumps ahead with a keyframe.
        """
        future = self._frames.get(frame_id)
        if future is None:
            if self._next is not None and frame_id < self._next:
                return None
            first = frame_id if self._next is None or frame_id - self._next >= self.keep else self._next
            if first != self._next:
                self._keyframe_due = True
            for scheduled in range(first, frame_id + 1):
                self._schedule(scheduled)
            future = self._frames[frame_id]
        return await asyncio.shield(future)  # one user cancelled must not cancel the frame for the others

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _schedule(self, frame_id: int) -> None:
        keyframe, self._keyframe_due = self._keyframe_due, False
        loop = asyncio.get_running_loop()
        self._frames[frame_id] = loop.run_in_executor(self._executor, self._encode, frame_id, keyframe)
        self._next = frame_id + 1
        while len(self._frames) > self.keep:
            self._frames.popitem(last=False)

    def _encode(self, frame_id: int, keyframe: bool) -> EncodedFrame:
        """Render, convert and encode one frame (in the worker thread), as aiortc's Vp8Encoder.encode does."""
        frame = VideoFrame.from_ndarray(self.camera.frame(frame_id), format="rgb24").reformat(format="yuv420p")
        frame.pts = round(frame_id * VIDEO_CLOCK / self.camera.fps)
        frame.time_base = Fraction(1, VIDEO_CLOCK)
        if keyframe:
            frame.pict_type = PictureType.I
        codec = self._codec or self._open(frame.width, frame.height)
        packets = codec.encode(frame)
        self.encoded += 1
        if not packets:
            return EncodedFrame(frame_id, None, False)
        packet = packets[0] if len(packets) == 1 else av.Packet(b"".join(bytes(p) for p in packets))
        is_key = keyframe or any(p.is_keyframe for p in packets)
        packet.pts = frame.pts
        packet.time_base = frame.time_base
        self.keyframes += is_key
        return EncodedFrame(frame_id, packet, is_key)

    def _open(self, width: int, height: int) -> av.VideoCodecContext:
        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        codec.time_base = Fraction(1, VIDEO_CLOCK)
        codec.bit_rate = self.bitrate
        codec.gop_size = 3000  # kf_max_dist
        codec.qmin, codec.qmax = 2, 56
        codec.options = {  # aiortc's Vp8Encoder's, word for word
            "bufsize": str(self.bitrate),
            "cpu-used": "-6",
            "deadline": "realtime",
            "lag-in-frames": "0",
            "minrate": str(self.bitrate),  # minrate = maxrate = bit_rate: CBR
            "maxrate": str(self.bitrate),
            "noise-sensitivity": "4",
            "overshoot-pct": "15",
            "partitions": "0",
            "static-thresh": "1",
            "undershoot-pct": "100",
        }
        codec.thread_count = number_of_threads(width * height, multiprocessing.cpu_count())
        self._codec = codec
        return codec
