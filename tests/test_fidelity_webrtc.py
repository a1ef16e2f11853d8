"""`bench fidelity --kind fastrtc-webrtc`: Chromium and our aiortc client on one FastRTC app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.fidelity_webrtc import SideMetrics, agreements
from tests.conftest import processes_with_token, run_cli


def side(p50: float, p95: float, fps: float, lost: float) -> SideMetrics:
    return SideMetrics(p50, p95, fps, 1 - lost, lost, 100, "ok", None)


def test_ratios_are_chromium_over_ours_and_loss_is_compared_as_delivery():
    rows = {r.metric: r for r in agreements(side(60, 90, 27, 0.1), side(50, 80, 30, 0.0), 0.15)}
    assert rows["latency_p50_ms"].ratio == pytest.approx(1.2) and not rows["latency_p50_ms"].agrees
    assert rows["latency_p95_ms"].ratio == pytest.approx(1.125) and rows["latency_p95_ms"].agrees
    assert rows["fps"].ratio == pytest.approx(0.9) and rows["fps"].agrees
    # ours lost nothing: a ratio of lost ratios would divide by zero, the delivered shares compare 0.9 / 1.0
    assert rows["delivered_ratio"].ratio == pytest.approx(0.9) and rows["delivered_ratio"].agrees


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (.ci/run installs it)")
def test_fidelity_runs_chromium_and_our_client_on_one_fastrtc_app(tmp_path: Path, process_token: str):
    folders = ("--out", str(tmp_path), "--store", str(tmp_path))
    args = ("--kind", "fastrtc-webrtc", "--duration", "4", "--warmup", "1", *folders)
    result = run_cli("fidelity", *args)
    assert result.returncode in (0, 1), result.stderr
    assert "latency_p50_ms" in result.stdout and "Chromium" in result.stdout
    measured = json.loads((tmp_path / "fidelity.json").read_text())
    # both streamed and were measured; whether they agree depends on the machine's load (BENCHMARKS.md judges)
    for name in ("browser", "client"):
        assert measured[name]["n"] > 30 and measured[name]["latency_p50_ms"] > 0, measured[name]
    assert [row["metric"] for row in measured["agreements"]] == [
        "latency_p50_ms",
        "latency_p95_ms",
        "fps",
        "delivered_ratio",
    ]
    assert measured["browser"]["details"]["jitter_buffer_ms"]["n"] == 1
    assert measured["agrees"] == (result.returncode == 0)
    assert json.loads((tmp_path / "fastrtc-webrtc.json").read_text())["client"] == "webrtc", "kept for reports"
    assert not processes_with_token(process_token), "neither Chromium nor the app outlives the command"
