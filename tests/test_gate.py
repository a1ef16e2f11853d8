"""CI gate end to end: check against a baseline, validate claims, export, and the pytest plugin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.compare import compare_samples, measured_latencies
from bench.runner import run_scenario
from bench.scenario import load_scenario
from bench.stats import block_resample_indices
from bench.store import load_run
from tests.conftest import run_cli

# end-to-end runs of real servers: part of the full suite, left out of the quick `-m "not slow"` loop
pytestmark = pytest.mark.slow


SCENARIO = """name = "gate"
duration_s = 6
warmup_s = 1
[source]
width = 320
height = 240
fps = 30
[[targets]]
kind = "aiortc-echo"
transform = "delay"
delay_ms = {delay}
[[claims]]
target = "aiortc-echo"
metric = "latency_ms.p95"
op = "<"
value = 1000
"""


def make_run(root: Path, delay_ms: int, extra: str = "") -> Path:
    path = root / f"gate-{delay_ms}-{len(list(root.glob('*.toml')))}.toml"
    path.write_text(SCENARIO.format(delay=delay_ms) + extra)
    scenario, resolved = load_scenario(path)
    return run_scenario(scenario, resolved, root / "runs").path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate")
    # one discarded warm-up run (cold imports and caches of the first launch, as pyperf discards warm-ups),
    # then interleaved so that drift of a shared machine hits both delays alike
    make_run(root, 0)
    return {"base": make_run(root, 0), "slow": make_run(root, 20), "again": make_run(root, 0)}


def test_same_scenario_twice_passes_the_check(runs: dict[str, Path]):
    result = run_cli("check", str(runs["again"]), "--baseline", str(runs["base"]))
    assert result.returncode == 0, result.stdout
    assert "No significant regression" in result.stdout


def test_extra_20ms_is_a_regression_that_names_the_case(runs: dict[str, Path], tmp_path: Path, monkeypatch):
    summary = tmp_path / "step-summary.md"
    result = run_cli(
        "check", str(runs["slow"]), "--baseline", str(runs["base"]), env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.returncode == 1, result.stdout
    assert "Regression" in result.stdout and "`aiortc-echo/delay`" in result.stdout
    assert "aiortc-echo/delay" in summary.read_text(), "the summary is appended for GitHub Actions"


def test_exported_baseline_file_gives_the_same_verdicts(runs: dict[str, Path], tmp_path: Path):
    baseline = tmp_path / "baseline.json"
    assert run_cli("export", str(runs["base"]), "--format", "baseline", "--out", str(baseline)).returncode == 0
    assert run_cli("check", str(runs["slow"]), "--baseline", str(baseline)).returncode == 1
    assert run_cli("check", str(runs["again"]), "--baseline", str(baseline)).returncode == 0


def test_compare_says_no_change_and_worse(runs: dict[str, Path]):
    same = run_cli("compare", str(runs["base"]), str(runs["again"]))
    assert "| aiortc-echo/delay | no change |" in same.stdout, same.stdout
    slower = run_cli("compare", str(runs["base"]), str(runs["slow"]))
    assert "| aiortc-echo/delay | 🔴 worse |" in slower.stdout, slower.stdout


def test_validate_exit_codes_follow_the_claims(runs: dict[str, Path], tmp_path: Path):
    passing = run_cli("validate", str(runs["base"]))
    assert passing.returncode == 0 and "✅ pass" in passing.stdout
    impossible = '[[claims]]\ntarget = "aiortc-echo"\nmetric = "latency_ms.p95"\nop = "<"\nvalue = 1\n'
    failing = run_cli("validate", str(make_run(tmp_path, 0, impossible)))
    assert failing.returncode == 1 and "❌ fail" in failing.stdout


def test_pytest_benchmark_compare_loads_the_export(runs: dict[str, Path], tmp_path: Path):
    exported = tmp_path / "0001_streambench.json"
    assert run_cli("export", str(runs["base"]), "--format", "pytest-benchmark", "--out", str(exported)).returncode == 0
    shown = subprocess.run(
        [sys.executable, "-c", "from pytest_benchmark.cli import main; main()", "compare", str(exported)],
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    assert "aiortc-echo/delay" in shown.stdout


@pytest.mark.parametrize("fmt", ["github-action-benchmark", "bencher", "csv"])
def test_other_exports_are_well_formed(runs: dict[str, Path], tmp_path: Path, fmt: str):
    out = tmp_path / "export"
    assert run_cli("export", str(runs["base"]), "--format", fmt, "--out", str(out)).returncode == 0
    text = out.read_text()
    if fmt == "github-action-benchmark":
        entries = json.loads(text)
        assert {"name", "unit", "value"} <= entries[0].keys() and entries[0]["unit"] == "ms"
    elif fmt == "bencher":
        assert json.loads(text)["aiortc-echo/delay"]["latency-p50"]["value"] > 0
    else:
        assert text.splitlines()[0].startswith("case,status,n,p50_ms")


def test_bad_gate_input_is_one_line_and_exit_2(runs: dict[str, Path], tmp_path: Path):
    for args in (
        ("check", str(tmp_path / "missing"), "--baseline", str(runs["base"])),
        ("check", str(runs["base"]), "--baseline", str(tmp_path / "missing")),
        ("check", str(runs["base"]), "--baseline", str(runs["base"]), "--threshold", "lots"),
        ("export", str(runs["base"]), "--format", "xml"),
    ):
        result = run_cli(*args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_plugin_fixture_measures_a_real_target(streambench):
    result = streambench.run_target("aiortc-echo", transform="flip", duration_s=3, fps=15)
    assert result.status == "ok"
    assert result.latency_ms.p95 < 1000
    assert result.fps == pytest.approx(15, rel=0.2)


def test_gate_false_alarms_and_power_on_resampled_real_runs(runs: dict[str, Path]):
    """20 A/A pairs flag at most 1; a 10 ms slowdown is caught in at least 19 of 20.

    Each side is an independent block resample of a recorded real run (keeping
    the correlation between consecutive frames), as if the run had been repeated.
    """
    latencies = measured_latencies(load_run(runs["base"]))["aiortc-echo/delay"]
    rng = np.random.default_rng(12)
    false_alarms = detections = 0
    for _ in range(20):
        a, b = (latencies[block_resample_indices(len(latencies), 1, rng)[0]] for _ in range(2))
        false_alarms += compare_samples("aa", a, b).verdict == "worse"
        detections += compare_samples("slow", a, b + 10).verdict == "worse"
    print(f"A/A false alarms {false_alarms}/20, +10 ms detected {detections}/20, p50 {np.median(latencies):.1f} ms")
    assert false_alarms <= 1
    assert detections >= 19
