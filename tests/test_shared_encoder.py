"""One VP8 encoding of the camera shared by every WebRTC user: each frame encoded once, every stream decodable."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import av
import pytest

from bench.clients._rtc_tracks import CameraTrack, forward_keyframe_requests
from bench.clients._shared_encoder import SharedVp8Encoder
from bench.clients.base import ClientConfig
from bench.clients.webrtc import WebRTCClient
from bench.launcher import RunningTarget
from bench.media.camera import VirtualCamera
from bench.media.marker import decode_marker
from bench.records import Send
from tests.test_webrtc import serve


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTarget]:
    yield from serve("targets.aiortc_echo", tmp_path_factory.mktemp("echo"))


def test_every_user_gets_every_frame_back_from_one_encoding_per_frame(echo):
    users, duration_s, fps = 3, 3.0, 15
    camera, client = VirtualCamera(320, 240, fps), WebRTCClient()

    async def go():
        camera.start()
        return await client.run(camera, ClientConfig(echo.url, duration_s, users, "identity", {"delay_ms": 0}))

    result = asyncio.run(go())
    assert [s.status for s in result.sessions] == ["ok"] * users, result.errors
    shared = client.shared
    assert shared is not None, "no network profile: the users share one encoder"
    for user in range(users):
        sent = {s.sample_id for s in result.sends if s.user == user}
        received = {r.sample_id for r in result.receipts if r.user == user}
        measured = {i for i in sent if camera.capture_time(i) <= camera.started + duration_s}
        assert received <= sent, "no wrong ids"
        assert len(measured) >= 0.8 * duration_s * fps, f"user {user} sends every frame"
        assert len(received & measured) >= 0.9 * len(measured), f"user {user} gets (almost) every frame back"
    distinct = {s.sample_id for s in result.sends}
    # a frame may be encoded and skipped by all (a user waiting for its first keyframe), hence the slack of users
    assert shared.encoded <= len(distinct) + users, "each frame encoded once, not once per user"
    assert len(result.sends) >= (users - 0.5) * shared.encoded, "every user sent the shared packets"
    assert result.undecoded <= 0.05 * len(result.receipts)


def decode_ids(packets: list[av.Packet]) -> list[int | None]:
    """What a receiver that joined with the first of `packets` reads: the marker id of each decoded frame."""
    decoder = av.CodecContext.create("libvpx", "r")
    ids = []
    for packet in packets:
        frames = decoder.decode(av.Packet(bytes(packet)))
        assert len(frames) == 1, "every packet decodes to one frame"
        reading = decode_marker(frames[0].to_ndarray(format="rgb24"))
        ids.append(reading.frame_id if reading else None)
    return ids


def test_a_track_starting_late_begins_on_a_keyframe_and_decodes_from_its_first_frame():
    camera = VirtualCamera(320, 240, 30)
    shared = SharedVp8Encoder(camera)
    early_sends: list[Send] = []
    late_sends: list[Send] = []

    async def pull(track: CameraTrack, count: int) -> list[av.Packet]:
        return [await track.recv() for _ in range(count)]

    async def go() -> tuple[list[av.Packet], list[av.Packet]]:
        camera.start()
        early, late = (
            CameraTrack(camera, user, camera.started + 60, sends) for user, sends in ((0, early_sends), (1, late_sends))
        )
        early.shared = late.shared = shared
        first = await pull(early, 8)
        both = await asyncio.gather(pull(early, 8), pull(late, 6))
        return first + both[0], both[1]

    try:
        early_packets, late_packets = asyncio.run(go())
    finally:
        shared.close()
    assert all(isinstance(p, av.Packet) for p in early_packets + late_packets), "aiortc only packetizes them"
    assert early_packets[0].is_keyframe and late_packets[0].is_keyframe, "each user's stream starts on a keyframe"
    assert [s.sample_id for s in early_sends] == list(range(early_sends[0].sample_id, early_sends[0].sample_id + 16))
    assert decode_ids(early_packets) == [s.sample_id for s in early_sends], "the early user's stream never breaks"
    assert decode_ids(late_packets) == [s.sample_id for s in late_sends], "the late one decodes from its first frame"
    late_ids = [s.sample_id for s in late_sends]
    assert late_ids == list(range(late_ids[0], late_ids[0] + 6)) and late_ids[0] > early_sends[7].sample_id
    assert shared.encoded == len({s.sample_id for s in early_sends + late_sends}), "no frame encoded twice"


def test_a_receivers_keyframe_request_makes_the_shared_encoder_send_one():
    camera = VirtualCamera(320, 240, 30)
    shared = SharedVp8Encoder(camera)

    class Sender:  # aiortc's RTCRtpSender answers a PLI / FIR with _send_keyframe()
        asked = 0

        def _send_keyframe(self) -> None:
            self.asked += 1

    sender = Sender()
    forward_keyframe_requests(sender, shared)  # type: ignore[arg-type]

    async def go() -> list[bool]:
        camera.start()
        keyframes = [(await shared.frame(i)).keyframe for i in range(4)]
        sender._send_keyframe()
        keyframes += [(await shared.frame(i)).keyframe for i in range(4, 7)]
        return keyframes

    try:
        keyframes = asyncio.run(go())
    finally:
        shared.close()
    assert sender.asked == 1, "the sender's own handling still runs"
    assert keyframes == [True, False, False, False, True, False, False]
