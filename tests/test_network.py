"""Network profiles end to end: the relay's added delay comes back as latency on each transport's critical path."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.errors import ScenarioError
from bench.runner import run_scenario
from bench.scenario import expand_cases, load_scenario

SCENARIO = """name = "network"
duration_s = {duration}
warmup_s = 2
repeat = {repeat}
[source]
width = 320
height = 240
fps = {fps}
[[targets]]
kind = "{kind}"
transform = "flip"
{extra}
network = ["none", "rtt-100"]
"""


def run(
    tmp_path: Path, kind: str, fps: float, extra: str = "", duration: float = 7, repeat: int = 1
) -> dict[str, dict]:
    path = tmp_path / f"{kind}.toml"
    path.write_text(SCENARIO.format(kind=kind, fps=fps, extra=extra, duration=duration, repeat=repeat))
    scenario, resolved = load_scenario(path)
    summary = run_scenario(scenario, resolved, tmp_path / "runs").summary
    return {c["params"]["network"]: c for c in summary["cases"]}


def test_network_lists_expand_into_named_cases(tmp_path: Path):
    path = tmp_path / "s.toml"
    path.write_text(
        SCENARIO.format(kind="aiortc-echo", fps=15, extra="", duration=5, repeat=1).replace(
            '["none", "rtt-100"]', '["none", "4g", {name = "lossy", loss = 0.05}]'
        )
    )
    cases = expand_cases(load_scenario(path)[0])
    assert [c.case_id for c in cases] == [
        "aiortc-echo/flip/network=none",
        "aiortc-echo/flip/network=4g",
        "aiortc-echo/flip/network=lossy",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [('"5g-ultra"', "unknown network profile '5g-ultra'"), ("{ rtt = 50 }", "rtt")],
)
def test_a_bad_network_is_one_line_naming_the_key(tmp_path: Path, value: str, message: str):
    path = tmp_path / "s.toml"
    path.write_text(
        SCENARIO.format(kind="aiortc-echo", fps=15, extra="", duration=5, repeat=1).replace(
            '["none", "rtt-100"]', value
        )
    )
    with pytest.raises(ScenarioError, match=r"targets\[0\]\.network") as error:
        load_scenario(path)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.slow
def test_50ms_each_way_adds_100ms_on_the_webrtc_path(tmp_path: Path):
    """Media crosses the relay once each way: +50 ms up, +50 ms down.

    Three interleaved launches of each case, so a slow spell of this shared machine lands on both sides
    (one launch each once read +142 ms, the baseline itself 30 ms slower than usual)."""
    cases = run(tmp_path, "aiortc-echo", fps=15, duration=5, repeat=3)
    assert all(c["status"] == "ok" for c in cases.values()), [c["status_reasons"] for c in cases.values()]
    added = cases["rtt-100"]["latency_ms"]["p50"] - cases["none"]["latency_ms"]["p50"]
    assert added == pytest.approx(100, abs=10)
    relays = cases["rtt-100"]["network"]
    # every frame crossed the relays both ways: ~15 fps of video in packets, not a stray STUN check
    assert (
        relays["profile"] == "rtt-100"
        and min(relays["up"]["packets_delivered"], relays["down"]["packets_delivered"]) > 50
    )
    assert relays["down"]["lateness_ms"]["p50"] < 5, "the relay's own cost stays small"


@pytest.mark.slow
def test_50ms_each_way_adds_two_round_trips_on_the_gradio_path(tmp_path: Path):
    """A .stream() frame pays four one-way trips: the frame up the websocket, the SSE message down, the
    output's GET up and its bytes down - two round trips, 200 ms at an RTT of 100 ms."""
    cases = run(tmp_path, "gradio-stream", fps=30, extra="stream_every = 0.25", duration=9)
    assert all(c["status"] == "ok" for c in cases.values()), [c["status_reasons"] for c in cases.values()]
    added = cases["rtt-100"]["latency_ms"]["p50"] - cases["none"]["latency_ms"]["p50"]
    assert added == pytest.approx(200, abs=25)
