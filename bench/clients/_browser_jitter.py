"""Make the harness's aiortc receiver release a video frame the way a browser does.

aiortc's JitterBuffer hands a frame to the decoder only when the first packet of
the NEXT frame arrives (it ignores the RTP marker bit), so every aiortc receiver
adds one frame interval: 33 ms at 30 fps, 250 ms at 4 fps. A browser's
libwebrtc receiver completes a frame on its last packet. The target's own
aiortc receiver keeps its real behaviour (users pay for it); only the client,
which stands in for the browser, releases on the marker bit.
"""

from __future__ import annotations

from aiortc import rtcrtpreceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket


class MarkerBitJitterBuffer(JitterBuffer):
    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if frame is None and self._is_video and packet.marker:
            frame = self._complete_frame(packet)
        return pli_flag, frame

    def _complete_frame(self, last: RtpPacket) -> JitterFrame | None:
        """The frame ending with `last`, if all its packets are here and nothing older is pending."""
        packets: list[RtpPacket] = []
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None or packet.timestamp != last.timestamp:
                return None
            packets.append(packet)
            if packet.sequence_number == last.sequence_number:
                self.remove(count + 1)
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=last.timestamp)
        return None


def release_frames_like_a_browser() -> None:
    rtcrtpreceiver.JitterBuffer = MarkerBitJitterBuffer
