"""Claims as code: every claim names targets of its scenario, and the shipped claims file says what the seed says."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.catalog import TARGET_KINDS
from bench.errors import ScenarioError
from bench.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
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


def test_shipped_claims_are_the_seed_claims():
    scenario, _ = load_scenario(ROOT / "scenarios" / "claims.toml")
    described = {(c.target, c.metric, c.op, c.value, c.than) for c in scenario.claims}
    assert ("fastrtc-webrtc", "latency_ms.p95", "<", 500, None) in described
    assert "gradio-stream" in TARGET_KINDS, "the Gradio claims need the gradio-stream target kind"
    assert ("fastrtc-webrtc", "latency_ms.p50", "<", None, "gradio-stream") in described
    assert ("gradio-stream", "event_latency_ms.p95", "<", 1000, None) in described
    assert {t.stream_every for t in scenario.targets if t.kind == "gradio-stream"} == {0.1}
