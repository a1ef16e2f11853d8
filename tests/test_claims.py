"""Claims as code: every claim names targets of its scenario, and the shipped claims file says what the seed says."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.errors import ScenarioError
from bench.scenario import comparable_case, expand_cases, load_scenario

ONE_TARGET = 'name = "c"\n[[targets]]\nkind = "aiortc-echo"\n'


def claim(**keys: str | float) -> str:
    body = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in keys.items())
    return ONE_TARGET + "[[claims]]\n" + body


def test_claim_against_an_unknown_target_is_refused_in_one_line(tmp_path: Path):
    path = tmp_path / "s.toml"
    path.write_text(claim(target="aiortc-echo", metric="latency_ms.p50", op="<", than="gradio-stream"))
    with pytest.raises(ScenarioError, match=r"s\.toml: .*claim than 'gradio-stream' names no target") as error:
        load_scenario(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"metric": "latency_ms.p50", "op": "<"}, "give exactly one of value"),
        ({"metric": "latency_ms.p50", "op": "<", "value": 1, "than": "aiortc-echo"}, "give exactly one of value"),
        ({"metric": "latency_ms.p42", "op": "<", "value": 1}, r"claims\[0\]\.metric"),
        ({"metric": "latency_ms.p50", "op": "~", "value": 1}, r"claims\[0\]\.op"),
    ],
)
def test_malformed_claims_name_the_key(tmp_path: Path, keys: dict, message: str):
    path = tmp_path / "s.toml"
    path.write_text(claim(target="aiortc-echo", **keys))
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


TWO_TARGETS = (
    'name = "c"\n[[targets]]\nkind = "fastrtc-webrtc"\ntransform = "flip"\n'
    '[[targets]]\nkind = "aiortc-echo"\ntransform = {other}\n'
    '[[claims]]\ntarget = "fastrtc-webrtc"\nmetric = "latency_ms.p50"\nop = "<"\nthan = "aiortc-echo"\n'
)


def test_than_claim_without_a_case_of_the_same_transform_is_refused(tmp_path: Path):
    """Comparing flip with edges would silently compare the wrong thing: refused at load, naming both sides."""
    path = tmp_path / "s.toml"
    path.write_text(TWO_TARGETS.format(other='"edges"'))
    with pytest.raises(ScenarioError, match=r"claims\[0\]: fastrtc-webrtc/flip vs aiortc-echo: no case with transform"):
        load_scenario(path)


def test_than_claim_with_several_comparable_cases_is_refused(tmp_path: Path):
    path = tmp_path / "s.toml"
    text = TWO_TARGETS.format(other='"flip"').replace("aiortc-echo", "gradio-stream")
    path.write_text(
        text.replace('transform = "flip"\n[[claims]]', 'transform = "flip"\nstream_every = [0.1, 0.5]\n[[claims]]')
    )
    with pytest.raises(ScenarioError, match=r"several cases to compare with: gradio-stream/flip/stream_every=0\.1"):
        load_scenario(path)


def test_than_claim_matches_the_same_swept_value(tmp_path: Path):
    """delay_ms = 0 on one side is compared with delay_ms = 0 on the other, not with 50."""
    path = tmp_path / "s.toml"
    path.write_text(TWO_TARGETS.format(other='"flip"\ndelay_ms = [0, 50]'))
    cases = expand_cases(load_scenario(path)[0])
    mine = next(c for c in cases if c.target == "fastrtc-webrtc")
    others = [(c.case_id, c.transform, c.params) for c in cases if c.target == "aiortc-echo"]
    assert comparable_case(mine.transform, mine.params, others) == "aiortc-echo/flip/delay_ms=0"


def test_than_claim_pairs_like_with_like(tmp_path: Path):
    path = tmp_path / "s.toml"
    path.write_text(TWO_TARGETS.format(other='["edges", "flip"]'))
    scenario, _ = load_scenario(path)
    assert scenario.claims[0].than == "aiortc-echo"
