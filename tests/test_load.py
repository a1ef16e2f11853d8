"""The load generator: users spread over client processes, a saturated client flagged, records spooled to disk."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.gate import check_run
from bench.report import render_report
from bench.runner import run_scenario
from bench.scenario import load_scenario
from bench.spool import Spool
from bench.store import SAMPLES, load_run, read_samples
from bench.workers import WorkerSpec, split_users
from tests.conftest import processes_with_token, run_cli

ECHO = (
    "duration_s = {duration}\nwarmup_s = 1\n[source]\nwidth = 320\nheight = 240\nfps = 15\n"
    '[[targets]]\nkind = "aiortc-echo"\nusers = {users}\n'
)


def scenario_file(tmp_path: Path, name: str, users: int, duration: float = 6) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\n' + ECHO.format(users=users, duration=duration))
    return path


@given(st.lists(st.integers(0, 10**6), max_size=50), st.integers(1, 7))
def test_a_spool_gives_back_every_record_in_order_across_chunks_and_pickling(records: list[int], chunk: int):
    spool: Spool[int] = Spool(chunk=chunk)
    for record in records:
        spool.append(record)
    assert list(spool) == records and len(spool) == len(records) and bool(spool) == bool(records)
    assert list(pickle.loads(pickle.dumps(spool))) == records


def test_appending_while_reading_a_spool_neither_loses_nor_repeats_records():
    spool: Spool[int] = Spool(range(10), chunk=3)
    reader = iter(spool)
    first = [next(reader) for _ in range(4)]
    spool.extend(range(10, 20))  # spills to the file the reader is reading
    assert first + list(reader) == list(range(10)) and list(spool) == list(range(20))


@given(st.integers(1, 200), st.integers(1, 16))
def test_users_are_dealt_to_processes_evenly_and_each_once(users: int, processes: int):
    shares = split_users(users, processes)
    numbered = [user for share in shares for user in range(share.first_user, share.first_user + share.users)]
    assert numbered == list(range(users))
    assert max(s.users for s in shares) - min(s.users for s in shares) <= 1 and len(shares) == min(users, processes)


def test_two_client_processes_measure_what_one_does(tmp_path: Path, process_token: str):
    """The same 4 users from one process and from two: every user measured once, the same latency."""
    path = scenario_file(tmp_path, "split", users=4)
    scenario, _ = load_scenario(path)
    one = run_scenario(scenario, path, tmp_path / "runs")
    two = run_scenario(scenario, path, tmp_path / "runs", workers=WorkerSpec(processes=2))
    assert not processes_with_token(process_token), "no client worker outlives the run"
    case_one, case_two = one.summary["cases"][0], two.summary["cases"][0]
    assert case_one["status"] == case_two["status"] == "ok", (case_one["status_reasons"], case_two["status_reasons"])
    processes = case_two["client_processes"]
    assert len({p["pid"] for p in processes}) == 2 and [p["users"] for p in processes] == [2, 2]
    assert case_one["client_processes"][0]["users"] == 4
    samples = read_samples(two.path / SAMPLES)
    assert sorted(samples["user"].unique()) == [0, 1, 2, 3], "users keep distinct numbers across processes"
    shown = samples[(samples["status"] == "ok") & ~samples["warmup"]]
    assert case_two["latency_ms"]["p50"] == pytest.approx(float(np.median(shown["latency_ms"])), abs=0.05)
    p50_one, p50_two = case_one["latency_ms"]["p50"], case_two["latency_ms"]["p50"]
    assert abs(p50_two - p50_one) <= 0.25 * p50_one, (p50_one, p50_two)
    page = render_report(load_run(two.path), tmp_path / "report").html.read_text()
    load_section = page[page.index("<h2>Load generator</h2>") :]
    for process in processes:
        assert f"<td>{process['pid']} on {process['host']}</td><td>2</td>" in load_section


def burn_the_gil(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(10_000))


def test_a_saturated_client_process_is_flagged_and_check_refuses_the_run(tmp_path: Path):
    """A thread burning the harness process's CPU saturates the load generator while the target idles (and, by
    Python's GIL convoy effect, starves its event loop): the case is client-bound, not passed off as the app's."""
    path = scenario_file(tmp_path, "hog", users=1)
    scenario, _ = load_scenario(path)
    stop = threading.Event()
    hog = threading.Thread(target=burn_the_gil, args=(stop,), daemon=True)
    hog.start()
    try:
        busy = run_scenario(scenario, path, tmp_path / "runs")
    finally:
        stop.set()
        hog.join()
    saturated = busy.summary["cases"][0]
    assert saturated["client_bound"] and saturated["status"] != "ok"
    reasons = " ".join(saturated["client_bound_reasons"])
    assert "% of a core" in reasons and "event loop woke" in reasons, reasons
    assert any("client-bound" in w for w in saturated["warnings"])
    gate = check_run(busy.path, busy.path, threshold=1.0)  # even against itself: no latency of the app to gate
    assert gate.exit_code == 1 and "client-bound" in gate.headline, gate.headline


def test_a_long_run_keeps_its_per_frame_records_on_disk():
    """What a 10-minute, 20-user run appends (18,000 records per minute) stays in memory one chunk at a time."""
    from bench.measure import resident_mb
    from bench.records import Receipt

    spool: Spool[Receipt] = Spool()
    for frame in range(2_000):
        for user in range(20):
            spool.append(Receipt(user, frame, frame / 15, {"server_ms": 1.0}))
    before = resident_mb()
    for frame in range(2_000, 12_000):
        for user in range(20):
            spool.append(Receipt(user, frame, frame / 15, {"server_ms": 1.0}))
    grown_mb = resident_mb() - before
    assert len(spool) == 240_000 and sum(1 for _ in spool) == 240_000
    assert grown_mb < 10, f"200,000 more records grew the process by {grown_mb:.0f} MB (~80 MB kept in memory)"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None, reason="needs unshare and ip")
def test_a_ray_cluster_on_this_machine_runs_the_users_as_actors(tmp_path: Path):
    """`ray start` in a network namespace of its own (only its loopback exists, so nothing listens elsewhere);
    `bench run --cluster` spreads 4 users over 2 actors, whose raw samples merge into one case."""
    path = scenario_file(tmp_path, "ray", users=4, duration=5)
    script = tmp_path / "cluster.sh"
    script.write_text(
        "set -e\nip link set lo up\nexport RAY_AUTH_MODE=disabled\n"
        "ray start --head --node-ip-address=127.0.0.1 --port=6391 --num-cpus=2 --include-dashboard=false "
        "--disable-usage-stats > ray.log 2>&1\n"
        f"trap 'ray stop --force > /dev/null 2>&1' EXIT\n"
        f"{sys.executable} -m bench run {path} --out runs --no-report --workers 2 --cluster 127.0.0.1:6391\n"
    )
    done = subprocess.run(
        ["unshare", "--net", "bash", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    run_dir = next((tmp_path / "runs").iterdir())
    case = json.loads((run_dir / "summary.json").read_text())["cases"][0]
    assert case["status"] == "ok" and json.loads((run_dir / "run.json").read_text())["client_workers"] == {
        "processes": 2,
        "cluster": "127.0.0.1:6391",
    }
    assert len({p["pid"] for p in case["client_processes"]}) == 2
    samples = read_samples(run_dir / SAMPLES)
    shown = samples[(samples["status"] == "ok") & ~samples["warmup"]]
    assert sorted(samples["user"].unique()) == [0, 1, 2, 3]
    assert case["latency_ms"]["p95"] == pytest.approx(float(np.percentile(shown["latency_ms"], 95)), abs=0.05)


def test_no_ray_cluster_at_the_address_is_one_line_and_exit_2(tmp_path: Path):
    path = scenario_file(tmp_path, "noray", users=2, duration=2)
    result = run_cli("run", str(path), "--out", str(tmp_path / "runs"), "--cluster", "127.0.0.1:1", "--no-report")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "no Ray cluster at 127.0.0.1:1" in result.stderr, result.stderr
