"""aiortc client for FastRTC-style WebRTC audio targets, doing what the browser does with a microphone.

Per user: the browser's signalling (`_rtc_session`: "text" data channel, offer with
a `webrtc_id`, rejected sessions, network relays), a microphone track sending 20 ms
s16 frames at 48 kHz in real time from the virtual microphone's clock, and every
returned frame mixed to mono and scanned for markers. A marker is sent when the
frame holding its first sample goes to the encoder, and received when the frame
holding that sample arrives plus the sample's offset in it (`_audio_receipts`).

Receive side: aiortc's audio jitter buffer holds every packet until 4 more have
arrived (prefetch 4, +80 ms on each aiortc receiver); a browser decodes packets as
they come and plays from a buffer sized to the measured jitter, which on loopback
is a few ms. The client, standing in for the browser, hands each packet to the
decoder on arrival; latency is to the decoded audio being available, and the
jitter a playout buffer would add on top is reported as the
`audio_arrival_jitter_ms` stream metric. The target's own aiortc receiver keeps
its real behaviour: users pay for it. Measured against the bare aiortc echo on
loopback: p50 ~202 ms with aiortc's buffer in the client, ~121 ms on arrival, with
an arrival jitter of p50 1-3 ms, p95 6-11 ms.
"""

from __future__ import annotations

from typing import Any

from aiortc import MediaStreamTrack, rtcrtpreceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add
from av import AudioFrame

from bench.clients._audio_receipts import AudioReceipts, mix_to_mono
from bench.clients._browser_jitter import MarkerBitJitterBuffer
from bench.clients._rtc_session import GRACE_S, RTCSession, run_sessions
from bench.clients._rtc_tracks import MarkerTrack
from bench.clients.base import ClientConfig
from bench.media.microphone import VirtualMicrophone
from bench.records import ClientResult

NEWER = 0x8000  # sequence-number distances below this (mod 2**16) are ahead of the last packet


class ArrivalJitterBuffer(MarkerBitJitterBuffer):
    """Audio packets go to the decoder as they arrive (one Opus packet is one frame); late or repeated ones are
    dropped, as a playout buffer drops a packet whose time has passed. Video keeps the marker-bit release."""

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity, prefetch, is_video)
        self._last: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if self._is_video:
            return super().add(packet)
        if self._last is not None and not 0 < uint16_add(packet.sequence_number, -self._last) < NEWER:
            return False, None
        self._last = packet.sequence_number
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)


def release_audio_on_arrival() -> None:
    """Patch this process's aiortc receivers (the video release stays browser-like too)."""
    rtcrtpreceiver.JitterBuffer = ArrivalJitterBuffer


class WebRTCAudioClient:
    def __init__(self) -> None:
        self.candidate_pairs: dict[int, str | None] = {}  # user -> nominated ICE pair of the last run

    async def run(self, camera: VirtualMicrophone, config: ClientConfig) -> ClientResult:
        """`camera` is the case's source: a virtual microphone (the runner's name for every source)."""
        result = ClientResult()
        release_audio_on_arrival()
        sessions = await run_sessions(_AudioSession, camera, config, result, self.candidate_pairs)
        result.metrics["audio_arrival_jitter_ms"] = [ms for s in sessions for ms in s.audio.arrival_jitter_ms()]
        return result


class _AudioSession(RTCSession):
    kind = "audio"
    noun = "audio"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.audio = AudioReceipts(self.user, self.result.receipts, self.source.sample_rate)

    def local_track(self) -> MediaStreamTrack:
        return MarkerTrack(self.source, self.user, self.stop_at + GRACE_S, self.result.sends)

    def on_media(self, frame: AudioFrame) -> None:
        if frame.format.name != "s16" or frame.sample_rate != self.audio.sample_rate:
            raise ValueError(
                f"received {frame.format.name} audio at {frame.sample_rate} Hz; markers are read from "
                f"interleaved s16 at {self.audio.sample_rate} Hz"
            )
        mono = mix_to_mono(frame.to_ndarray(), len(frame.layout.channels))
        if self.audio.feed(mono, self.last_media_s):
            self.phase("first_output_ms")
