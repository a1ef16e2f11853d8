"""The client's browser-like video receiver reaches into aiortc's private JitterBuffer: fail loudly when aiortc
changes what it relies on (pyproject pins the aiortc range it was tested on)."""

from __future__ import annotations

import inspect
from importlib.metadata import version

from aiortc import rtcrtpreceiver
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from bench.clients._browser_jitter import MarkerBitJitterBuffer, release_frames_like_a_browser

RELIED_ON = ("_packets", "_origin", "_capacity", "_is_video", "capacity", "remove")


def packet(sequence: int, timestamp: int, marker: bool) -> RtpPacket:
    """As aiortc's receiver hands packets to its jitter buffer: depayloaded into `_data` first."""
    rtp = RtpPacket(payload_type=96, sequence_number=sequence, timestamp=timestamp, marker=int(marker), payload=b"x")
    rtp._data = b"x"
    return rtp


def test_aiortc_still_has_the_private_jitter_buffer_fields_the_receiver_uses():
    buffer = JitterBuffer(capacity=128, is_video=True)
    missing = [name for name in RELIED_ON if not hasattr(buffer, name)]
    assert not missing, f"aiortc {version('aiortc')} changed JitterBuffer ({missing}): re-check _browser_jitter.py"
    assert hasattr(rtcrtpreceiver, "JitterBuffer"), "aiortc's receiver no longer looks JitterBuffer up by module name"
    source = inspect.getsource(rtcrtpreceiver)
    assert "packet._data = " in source, "aiortc's receiver no longer depayloads into packet._data"


def test_a_frame_is_released_on_its_marker_bit_not_on_the_next_frames_first_packet():
    stock, browser_like = JitterBuffer(capacity=128, is_video=True), MarkerBitJitterBuffer(capacity=128, is_video=True)
    frame = [packet(100, 9000, False), packet(101, 9000, False), packet(102, 9000, True)]
    assert [stock.add(p)[1] for p in frame] == [None, None, None], "stock aiortc holds the frame (the reason we patch)"
    released = [browser_like.add(p)[1] for p in frame]
    assert released[:2] == [None, None] and released[2] is not None
    assert released[2].timestamp == 9000 and released[2].data == b"xxx"
    following = browser_like.add(packet(103, 12000, True))[1]
    assert following is not None and following.timestamp == 12000, "the buffer moved on past the released frame"


def test_the_patch_reaches_the_receiver():
    original = rtcrtpreceiver.JitterBuffer
    try:
        release_frames_like_a_browser()
        assert rtcrtpreceiver.JitterBuffer is MarkerBitJitterBuffer
    finally:
        rtcrtpreceiver.JitterBuffer = original
