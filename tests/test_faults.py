"""Targets that hang or die mid-run: the run says partial and why, keeps what it measured, leaves nothing running.

A hung target (SIGSTOP of its whole process group) still accepts connections - the kernel completes them - but
answers nothing; only the silence gives it away (STALL_S, 5 s), so these runs are a little longer than the rest.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from bench.clients.gradio_stream import GradioStreamClient
from bench.launcher import TargetCommand, launch
from bench.media.camera import VirtualCamera
from bench.store import read_samples
from tests.conftest import drive_then_kill, processes_with_token, run_cli

APPS = Path(__file__).parent / "apps"
HANG_AFTER_S = 3.0  # the apps stop themselves this long after their first session / frame

pytestmark = pytest.mark.slow


def run_hanging(tmp_path: Path, kind: str, app: str, ready_path: str, duration_s: int) -> tuple[int, dict, Path]:
    """`bench run` of one case of a self-hanging app: exit code, the case's summary, the run directory."""
    scenario = tmp_path / "hang.toml"
    scenario.write_text(
        f'name = "hang"\nduration_s = {duration_s}\nwarmup_s = 1\n[source]\nwidth = 320\nheight = 240\nfps = 15\n'
        f'[[targets]]\nkind = "{kind}"\napp = "{APPS / app}"\nready_path = "{ready_path}"\n'
    )
    result = run_cli("run", str(scenario), "--out", str(tmp_path / "runs"), "--no-report")
    assert "Traceback" not in result.stderr, result.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "partial", summary
    return result.returncode, summary["cases"][0], run_dir


def assert_partial_until_the_hang(case: dict, run_dir: Path, duration_s: int, stalled: str) -> None:
    assert case["status"] == "partial", case["status_reasons"]
    assert any("sessions failed" in r and stalled in r for r in case["status_reasons"]), case["status_reasons"]
    samples = read_samples(run_dir / "samples.parquet")
    shown = samples[samples["status"] == "ok"]
    assert case["n"] >= 10 and len(shown[~shown["warmup"]]) == case["n"], "frames from the warm-up to the hang"
    # the app stops 3 s after its first session / frame, which comes within a second or two of the camera's start
    assert shown["recv_s"].max() < HANG_AFTER_S + 2, "nothing is shown after the hang"
    # frozen from the hang to the end of the window
    assert case["freezes"] >= 1 and case["frozen_s"] > duration_s - HANG_AFTER_S - 2, case["frozen_s"]


def test_a_webrtc_target_that_hangs_mid_run_makes_the_run_partial_and_exits_3(tmp_path: Path, process_token: str):
    duration_s = 11  # the hang at ~3 s, then 5 s of silence before it counts as a stall, probes included
    code, case, run_dir = run_hanging(tmp_path, "aiortc-echo", "hangs_mid_run.py", "/health", duration_s)
    assert code == 3
    assert not processes_with_token(process_token), "the stopped target was stopped for good"
    assert_partial_until_the_hang(case, run_dir, duration_s, "no video frame came back for")
    assert any("(target stalled)" in r for r in case["status_reasons"])


def test_a_gradio_stream_target_that_hangs_mid_run_makes_the_run_partial_and_exits_3(
    tmp_path: Path, process_token: str
):
    duration_s = 12  # Gradio's first call is slower to come: ~1 s more than WebRTC's first frame
    code, case, run_dir = run_hanging(tmp_path, "gradio-stream", "gradio_hangs_mid_run.py", "/config", duration_s)
    assert code == 3
    assert not processes_with_token(process_token), "the stopped target was stopped for good"
    assert_partial_until_the_hang(case, run_dir, duration_s, "no output came back for")
    assert any("(target stalled)" in r for r in case["status_reasons"])


def test_a_gradio_stream_target_that_dies_mid_run_stopped_answering(tmp_path: Path, process_token: str):
    """Killed outright 2 s in: its port refuses connections, so the session fails at once, saying so."""
    argv = [sys.executable, "-m", "targets.gradio_stream", "--port", "{port}", "--stream-every", "0.1"]
    camera = VirtualCamera(320, 240, 15)
    with launch(TargetCommand(argv, ready_path="/config"), tmp_path / "target.log") as target:
        result = drive_then_kill(GradioStreamClient(), camera, target, kill_after_s=2.0)
    elapsed = time.perf_counter() - camera.started
    session = result.sessions[0]
    assert session.status == "failed" and (session.error or "").startswith("target stopped answering"), session
    assert result.receipts, "outputs came back before the kill"
    assert max(r.recv_s for r in result.receipts) - camera.started < 2.5
    assert elapsed < 5.0, "a dead target is noticed within seconds, not at the end of the run"
    assert not processes_with_token(process_token)
