"""Targets start on loopback, report failures with their log, and never outlive the harness."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.errors import TargetError
from bench.launcher import TargetCommand, launch
from tests.conftest import ROOT, processes_with_token

APPS = Path(__file__).parent / "apps"


def wait_until(predicate, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_stop_kills_the_whole_process_group(tmp_path: Path, process_token: str):
    command = TargetCommand([sys.executable, str(APPS / "forking_server.py"), "{port}"])
    with launch(command, tmp_path / "t.log") as target:
        assert target.url.startswith("http://127.0.0.1:")
        assert wait_until(lambda: len(processes_with_token(process_token)) >= 2), "server and grandchild run"
    assert wait_until(lambda: not processes_with_token(process_token))


def test_a_hung_target_is_stopped_at_once_not_after_the_grace(tmp_path: Path, process_token: str):
    """A SIGSTOPped group holds SIGTERM pending: without SIGCONT it would sit out the grace and need SIGKILL."""
    command = TargetCommand([sys.executable, str(APPS / "forking_server.py"), "{port}"])
    target = launch(command, tmp_path / "t.log")
    assert wait_until(lambda: len(processes_with_token(process_token)) >= 2), "server and grandchild run"
    os.killpg(target.pid, signal.SIGSTOP)
    started = time.monotonic()
    target.stop(grace_s=5.0)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"stopping a hung target took {elapsed:.1f} s of a 5 s grace"
    assert target.process.returncode == -signal.SIGTERM, "it ended on the SIGTERM, not a later SIGKILL"
    assert wait_until(lambda: not processes_with_token(process_token))


def test_target_that_exits_early_is_a_target_error_with_its_log(tmp_path: Path, process_token: str):
    command = TargetCommand([sys.executable, "-c", "print('boom: missing model'); raise SystemExit(3)"])
    with pytest.raises(TargetError, match=r"exited with code 3.*boom: missing model"):
        launch(command, tmp_path / "t.log")
    assert not processes_with_token(process_token)


def test_target_that_never_gets_ready_times_out_and_is_stopped(tmp_path: Path, process_token: str):
    command = TargetCommand([sys.executable, "-c", "import time; time.sleep(60)"], ready_timeout_s=1.5)
    with pytest.raises(TargetError, match="not ready"):
        launch(command, tmp_path / "t.log")
    assert wait_until(lambda: not processes_with_token(process_token))


def test_targets_get_offline_loopback_environment(tmp_path: Path):
    script = "import os,sys; print(os.environ['GRADIO_ANALYTICS_ENABLED'], os.environ['HF_HUB_OFFLINE'], flush=True)"
    command = TargetCommand([sys.executable, "-c", script], ready_timeout_s=1.0)
    with pytest.raises(TargetError):
        launch(command, tmp_path / "t.log")
    assert "False 1" in (tmp_path / "t.log").read_text()


def test_sigint_during_a_run_keeps_no_target_alive(tmp_path: Path, process_token: str):
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "sigint"\nduration_s = 30\nwarmup_s = 1\n[[targets]]\nkind = "aiortc-echo"\n')
    env = {**os.environ, "STREAMBENCH_TEST_TOKEN": process_token}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", str(scenario), "--out", str(tmp_path / "runs"), "--no-report"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert wait_until(lambda: len(processes_with_token(process_token)) >= 2, 60), "the target started"
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert wait_until(lambda: not processes_with_token(process_token), 15), "no process outlives the run"
    assert "Traceback" not in err
    run_dirs = list((tmp_path / "runs").iterdir())
    assert len(run_dirs) == 1 and (run_dirs[0] / "summary.json").exists()
    assert not list(run_dirs[0].glob(".*.tmp")), "no half-written files"


def test_failed_target_exits_3_and_leaves_nothing_running(tmp_path: Path, process_token: str):
    scenario = tmp_path / "s.toml"
    app = APPS / "crashing_app.py"
    scenario.write_text(f'name = "broken"\nduration_s = 3\n[[targets]]\nkind = "fastrtc-webrtc"\napp = "{app}"\n')
    result = subprocess.run(
        [sys.executable, "-m", "bench", "run", str(scenario), "--out", str(tmp_path / "runs"), "--no-report"],
        cwd=ROOT,
        env={**os.environ, "STREAMBENCH_TEST_TOKEN": process_token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "crashing_app: cannot load the model" in result.stdout, "the target's own error is shown"
    assert wait_until(lambda: not processes_with_token(process_token), 10)
    summary = json.loads(next((tmp_path / "runs").iterdir()).joinpath("summary.json").read_text())
    assert summary["status"] == "failed" and summary["cases"][0]["status"] == "failed"
