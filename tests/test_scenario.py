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


LOAD = (
    'name = "ramp"\nwarmup_s = 1\n[[targets]]\nkind = "gradio-stream"\ntransform = "flip"\nconcurrency_limit = 8\n'
    '[[targets]]\nkind = "fastrtc-webrtc"\ntransform = "flip"\nconcurrency_limit = 8\n'
    "[load]\nusers_from = 2\nusers_to = 8\nstep = 3\nhold_s = 6\n"
)


def test_load_ramps_every_targets_users_and_each_step_lasts_hold_s(tmp_path: Path):
    scenario, _ = load_scenario(write(tmp_path, LOAD))
    cases = expand_cases(scenario)
    assert [c.case_id for c in cases] == [
        "gradio-stream/flip/users=2",
        "gradio-stream/flip/users=5",
        "gradio-stream/flip/users=8",
        "fastrtc-webrtc/flip/users=2",
        "fastrtc-webrtc/flip/users=5",
        "fastrtc-webrtc/flip/users=8",
    ]
    assert [c.settings["users"] for c in cases[:3]] == [2, 5, 8]
    assert (scenario.duration_s, scenario.warmup_s) == (6, 1)  # hold_s replaces duration_s; warmup_s still applies
    # what run.json stores loads again unchanged (reports and checks may re-read it)
    again = type(scenario).model_validate(scenario.model_dump(mode="json"))
    assert [c.case_id for c in expand_cases(again)] == [c.case_id for c in cases]


def test_load_warmup_replaces_the_scenarios_and_a_single_step_is_one_case(tmp_path: Path):
    text = LOAD.replace("warmup_s = 1\n", "").replace("users_to = 8\nstep = 3\n", "users_to = 2\n")
    scenario, _ = load_scenario(write(tmp_path, text + "warmup_s = 2.5\n"))
    assert (scenario.duration_s, scenario.warmup_s) == (6, 2.5)
    assert [c.settings["users"] for c in expand_cases(scenario)] == [2, 2]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("hold_s = 6\n", ""), ["load.hold_s", "required key is missing"]),
        (("step = 3", "step = 0"), ["load.step", "greater than or equal to 1"]),
        (("step = 3", "stepp = 3"), ["load.stepp", "unknown key", "users_from", "fps_ratio_min"]),
        (("users_from = 2", "users_from = 9"), ["load", "users_to (8) must be >= users_from (9)"]),
        (("step = 3", "step = 4"), ["load", "whole number of steps (4)"]),
        (("hold_s = 6", "hold_s = 6\nfps_ratio_min = 1.5"), ["load.fps_ratio_min", "less than or equal to 1"]),
        (('"fastrtc-webrtc"\n', '"fastrtc-webrtc"\nusers = [1, 2]\n'), ["load", "'fastrtc-webrtc'", "users ([1, 2])"]),
        (('name = "ramp"\n', 'name = "ramp"\nduration_s = 30\n'), ["duration_s (30)", "hold_s (6)"]),
        (("hold_s = 6", "hold_s = 6\nwarmup_s = 2"), ["warmup_s (1)", "load.warmup_s (2)"]),
        (("hold_s = 6", "hold_s = 0.5"), ["warmup_s (1", "shorter than duration_s (0.5)"]),
    ],
)
def test_bad_load_is_one_line_naming_the_key(tmp_path: Path, change: tuple[str, str], expected: list[str]):
    assert change[0] in LOAD
    with pytest.raises(ScenarioError) as raised:
        load_scenario(write(tmp_path, LOAD.replace(*change, 1)))
    message = str(raised.value)
    assert "\n" not in message and message.startswith(str(tmp_path))
    for fragment in expected:
        assert fragment in message, message
