"""Scenario files: bad input is one clear line and exit 2; lists expand into named cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.errors import ScenarioError
from bench.scenario import expand_cases, load_scenario
from tests.conftest import ROOT, run_cli

GOOD = 'name = "t"\nduration_s = 5\n[[targets]]\nkind = "aiortc-echo"\ntransform = "flip"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + 'transfrom = "edges"\n', ["targets[0].transfrom", "unknown key", "allowed:", "transform"]),
        (GOOD.replace("duration_s = 5", 'duration_s = "long"'), ["duration_s", "long"]),
        (GOOD.replace("aiortc-echo", "webrtc"), ["targets[0].kind", "unknown target kind", "fastrtc-webrtc"]),
        (GOOD + "[source]\nwidht = 320\n", ["source.widht", "unknown key", "width"]),
        (GOOD.replace('"flip"', '"blur"'), ["targets[0].transform", "allowed:", "cartoon"]),
        (GOOD + "delay_ms = -5\n", ["targets[0].delay_ms", ">= 0"]),
        ('name = "t"\nduration_s = 2\nwarmup_s = 3\n[[targets]]\nkind = "aiortc-echo"\n', ["warmup_s", "shorter"]),
        ('name = "t"\n', ["targets", "missing"]),
        ("name = \n", ["not valid TOML"]),
    ],
)
def test_bad_scenario_exits_2_with_one_line_naming_file_and_key(tmp_path: Path, text: str, expected: list[str]):
    path = write(tmp_path, text)
    result = run_cli("run", str(path), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0]
    for fragment in expected:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "runs").exists(), "nothing is written for a scenario that does not load"


def test_missing_scenario_file_exits_2_and_lists_bundled(tmp_path: Path):
    result = run_cli("run", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "nope.toml" in result.stderr and "not found" in result.stderr and "quick.toml" in result.stderr


def test_lists_expand_and_params_name_what_differs():
    scenario, _ = load_scenario(ROOT / "scenarios" / "calibration.toml")
    cases = expand_cases(scenario)
    assert [c.params for c in cases] == [
        {"delay_ms": 0.0, "fps": 4.0},
        {"delay_ms": 50.0, "fps": 4.0},
        {"delay_ms": 200.0, "fps": 4.0},
        {"delay_ms": 50.0, "fps": 30.0},
    ]
    assert cases[1].case_id == "fastrtc-webrtc/delay/delay_ms=50,fps=4"
    assert cases[3].target == "fastrtc-webrtc-backlog"


def test_constant_settings_are_not_params(tmp_path: Path):
    scenario, _ = load_scenario(write(tmp_path, GOOD + "[[targets]]\nkind = 'fastrtc-webrtc'\ntransform = 'flip'\n"))
    assert [c.case_id for c in expand_cases(scenario)] == ["aiortc-echo/flip", "fastrtc-webrtc/flip"]


def test_identical_cases_are_refused(tmp_path: Path):
    with pytest.raises(ScenarioError, match=r"scenario\.toml: cases are not distinct"):
        load_scenario(write(tmp_path, GOOD + "[[targets]]\nkind = 'aiortc-echo'\ntransform = 'flip'\n"))


def test_claim_must_name_a_target(tmp_path: Path):
    text = GOOD + '[[claims]]\ntarget = "gradio"\nmetric = "latency_ms.p95"\nop = "<"\nvalue = 500\n'
    with pytest.raises(ScenarioError, match="names no target"):
        load_scenario(write(tmp_path, text))


def test_every_bundled_scenario_loads():
    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        scenario, _ = load_scenario(path)
        assert expand_cases(scenario), path
