"""WebRTC client against real FastRTC and bare aiortc servers on loopback."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from bench.clients import webrtc
from bench.clients.base import ClientConfig
from bench.clients.webrtc import WebRTCClient
from bench.launcher import LOOPBACK_SITE, RunningTarget, TargetCommand, launch
from bench.loopback import loopback_only_sdp
from bench.media.camera import VirtualCamera
from bench.records import ClientResult
from bench.runner import run_scenario
from bench.scenario import load_scenario
from tests.conftest import (
    a_second_webrtc_user_while_the_first_streams,
    breaks_after,
    drive_then_kill,
    processes_with_token,
)

APPS = Path(__file__).parent / "apps"


def drive(url: str, transform: str, duration_s: float = 4.0) -> tuple[VirtualCamera, WebRTCClient, ClientResult]:
    """One user at 640x480@30 for `duration_s`, as the runner does it: camera started, then the client."""
    camera, client = VirtualCamera(640, 480, 30), WebRTCClient()

    async def go() -> ClientResult:
        camera.start()
        return await client.run(camera, ClientConfig(url, duration_s, 1, transform, {"delay_ms": 0}))

    return camera, client, asyncio.run(go())


def serve(module: str, log_dir: Path, *args: str) -> Iterator[RunningTarget]:
    """Launch `module`, yield it, and prove after stopping it that none of its processes is left."""
    token = uuid.uuid4().hex
    argv = [sys.executable, "-m", module, "--port", "{port}", *args]
    with launch(TargetCommand(argv, env={"STREAMBENCH_TEST_TOKEN": token}), log_dir / "target.log") as target:
        assert processes_with_token(token), "the token reaches the target's processes"
        yield target
    assert processes_with_token(token) == [], "stopping a target leaves no process behind"


@pytest.fixture(scope="module")
def fastrtc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTarget]:
    yield from serve("targets.fastrtc_webrtc", tmp_path_factory.mktemp("fastrtc"), "--concurrency-limit", "1")


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTarget]:
    yield from serve("targets.aiortc_echo", tmp_path_factory.mktemp("echo"))


@pytest.mark.parametrize(
    ("server", "transform", "orientation"),
    [("fastrtc", "flip", "flip_ud"), ("fastrtc", "identity", "identity"), ("echo", "flip", "flip_ud")],
)
def test_frames_come_back_transformed_with_their_ids(request, server: str, transform: str, orientation: str):
    duration_s = 4.0
    camera, client, result = drive(request.getfixturevalue(server).url, transform, duration_s)
    assert [s.status for s in result.sessions] == ["ok"], result.errors
    assert result.errors == []
    sent = {s.sample_id for s in result.sends}
    received = {r.sample_id for r in result.receipts}
    assert received <= sent, "every id read back was sent: no wrong ids"
    # the frames the runner measures are those captured within the duration; the grace is for them
    measured = {i for i in sent if camera.capture_time(i) <= camera.started + duration_s}
    assert len(measured) >= 0.8 * duration_s * 30, "the camera track sends every frame at 30 fps"
    assert len(received & measured) >= 0.9 * len(measured)
    assert result.undecoded <= 0.05 * len(result.receipts)
    # every decoded frame shows the transform: the inputs were set before the first frame came back
    assert set(result.orientations) == {orientation}, result.orientations
    assert {r.orientation for r in result.receipts} == {orientation}, "each receipt says which way up it came back"
    phases = result.sessions[0].phases_ms
    assert 0 < phases["offer_ms"] <= phases["ice_connected_ms"] <= phases["connected_ms"] <= phases["first_frame_ms"]
    assert phases["first_frame_ms"] < 5000
    latencies = [(r.recv_s - camera.capture_time(r.sample_id)) * 1000 for r in result.receipts]
    assert 0 < statistics.median(latencies) < 2000, "sanity only: loopback at 30 fps is ~50-100 ms"
    pair = client.candidate_pairs[0]
    assert pair is not None and pair.startswith("127.0.0.1:") and "-> 127.0.0.1:" in pair, pair


def test_second_session_while_the_first_is_connected_is_rejected_not_a_crash(fastrtc):
    a_second_webrtc_user_while_the_first_streams(fastrtc.url, VirtualCamera(640, 480, 30), 2.0)


def test_target_dying_mid_session_fails_the_session_without_raising(tmp_path: Path):
    token = uuid.uuid4().hex
    argv = [sys.executable, "-m", "targets.aiortc_echo", "--port", "{port}"]
    command = TargetCommand(argv, env={"STREAMBENCH_TEST_TOKEN": token})
    camera = VirtualCamera(640, 480, 30)
    with launch(command, tmp_path / "target.log") as target:
        result = drive_then_kill(WebRTCClient(), camera, target, kill_after_s=1.5)
    elapsed = time.perf_counter() - camera.started
    session = result.sessions[0]
    assert session.status == "failed" and "stopped answering" in (session.error or ""), session
    assert result.receipts, "frames came back before the kill"
    assert elapsed < 6.0, "a dead target is noticed within seconds, not at the end of the run"
    assert processes_with_token(token) == []


@pytest.mark.slow
def test_a_receiver_bug_fails_the_session_as_a_client_error_not_a_stalled_target(echo, monkeypatch):
    monkeypatch.setattr(webrtc, "decode_marker", breaks_after(webrtc.decode_marker, 5))
    duration_s = 3.0
    camera, _, result = drive(echo.url, "flip", duration_s)
    returned_after_s = time.perf_counter() - camera.started
    session = result.sessions[0]
    assert session.status == "failed"
    assert (session.error or "").startswith("streambench client error"), session.error
    assert result.client_errors == ["user 0 video receiver: ValueError: marker decoder broke"]
    assert not any("stalled" in e for e in [*result.errors, session.error or ""]), result.errors
    assert len(result.receipts) == 5, "the frames decoded before the break were kept"
    assert returned_after_s < duration_s, "the session ends at once, not when the run would have"


def test_target_answers_with_loopback_candidates_only(echo):
    """The launcher's sitecustomize makes the target's aioice gather 127.0.0.1 only."""

    async def answer_sdp() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.createDataChannel("text")
        pc.addTransceiver("video")
        await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient() as http:
            body = {"sdp": pc.localDescription.sdp, "type": "offer", "webrtc_id": uuid.uuid4().hex}
            response = await http.post(f"{echo.url}/webrtc/offer", json=body)
        await pc.close()
        return response.json()["sdp"]

    candidates = [line.split()[4] for line in asyncio.run(answer_sdp()).splitlines() if line.startswith("a=candidate:")]
    assert candidates and set(candidates) == {"127.0.0.1"}, candidates


def test_loopback_site_patches_aioice_only_when_asked_and_chains_another_sitecustomize(tmp_path: Path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import os\nos.environ['OTHER_SITECUSTOMIZE'] = 'ran'\n")
    code = (
        "import os, sys\n"
        "eager = 'aioice.ice' in sys.modules\n"
        "import aioice.ice\n"
        "print(eager, aioice.ice.get_host_addresses(True, False), os.environ.get('OTHER_SITECUSTOMIZE'))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(LOOPBACK_SITE), str(other)])}

    def run(**extra: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True, check=True, cwd=tmp_path
        ).stdout.strip()

    assert run(STREAMBENCH_LOOPBACK_ICE="1") == "False ['127.0.0.1'] ran", "patched on import, not imported eagerly"
    assert "'127.0.0.1'" not in run(STREAMBENCH_LOOPBACK_ICE="0"), "aioice's own gathering skips 127.0.0.1"


def test_loopback_only_sdp_drops_other_candidates():
    sdp = "v=0\r\na=candidate:1 1 udp 9 192.0.2.2 5000 typ host\r\na=candidate:2 1 udp 9 127.0.0.1 5001 typ host\r\n"
    assert loopback_only_sdp(sdp) == "v=0\r\na=candidate:2 1 udp 9 127.0.0.1 5001 typ host\r\n"


def test_set_input_without_a_frame_placeholder_is_flagged(tmp_path: Path):
    """fastrtc's video callback puts the frame in args[0]: set_input(id, *inputs) loses the first input."""
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "doc"\nduration_s = 3\nwarmup_s = 1\n[[targets]]\nkind = "fastrtc-webrtc"\ntransform = "flip"\n'
        f'app = "{APPS / "fastrtc_set_input_as_documented.py"}"\n'
    )
    scenario, resolved = load_scenario(path)
    case = run_scenario(scenario, resolved, tmp_path / "runs").summary["cases"][0]
    assert case["n"] > 0
    assert set(case["orientations"]) == {"identity"}
    assert any("did not run" in w for w in case["warnings"])
    assert case["status"] == "degraded", "a measured echo is not the transform the user asked for"
