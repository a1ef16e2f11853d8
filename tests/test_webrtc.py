"""WebRTC client against real FastRTC and bare aiortc servers on loopback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from bench.clients.base import ClientConfig
from bench.clients.webrtc import WebRTCClient
from bench.launcher import TargetCommand, launch
from bench.media.camera import VirtualCamera
from bench.records import ClientResult
from bench.runner import run_scenario
from bench.scenario import load_scenario

APPS = Path(__file__).parent / "apps"


def drive(url: str, transform: str, users: int = 1, duration_s: float = 3.0) -> ClientResult:
    camera = VirtualCamera(640, 480, 30)

    async def go() -> ClientResult:
        camera.start()
        return await WebRTCClient().run(camera, ClientConfig(url, duration_s, users, transform, {"delay_ms": 0}))

    return asyncio.run(go())


@pytest.fixture(scope="module")
def fastrtc(tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("fastrtc") / "target.log"
    command = TargetCommand([sys.executable, "-m", "targets.fastrtc_webrtc", "--port", "{port}"])
    with launch(command, log) as target:
        yield target


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("echo") / "target.log"
    with launch(TargetCommand([sys.executable, "-m", "targets.aiortc_echo", "--port", "{port}"]), log) as target:
        yield target


@pytest.mark.parametrize(
    ("server", "transform", "orientation"), [("fastrtc", "flip", "flip_ud"), ("echo", "identity", "identity")]
)
def test_frames_come_back_transformed_with_their_ids(request, server: str, transform: str, orientation: str):
    result = drive(request.getfixturevalue(server).url, transform)
    assert [s.status for s in result.sessions] == ["ok"], result.errors
    sent = {s.sample_id for s in result.sends}
    received = {r.sample_id for r in result.receipts}
    assert received <= sent, "every id read back was sent: no wrong ids"
    # frames sent in the last ~100 ms may still be in flight when the grace ends
    assert len(received) >= 0.9 * len([s for s in sent if s <= max(received)])
    assert max(result.orientations, key=result.orientations.get) == orientation, "the transform ran"
    phases = result.sessions[0].phases_ms
    assert 0 < phases["offer_ms"] <= phases["connected_ms"] <= phases["first_frame_ms"] < 5000


def test_session_beyond_concurrency_limit_is_rejected_not_a_crash(fastrtc):
    result = drive(fastrtc.url, "flip", users=2, duration_s=2.0)
    statuses = sorted(s.status for s in result.sessions)
    assert statuses == ["ok", "rejected"]
    rejected = next(s for s in result.sessions if s.status == "rejected")
    assert rejected.error in ("concurrency_limit_reached", "connection_already_exists")


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
