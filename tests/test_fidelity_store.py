"""The stored `bench fidelity` result and the note it gives every synthetic case (no servers, no browser)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bench import fidelity_store
from bench.fidelity_store import ENV_DIR, fidelity_note, load, measured, save
from bench.measure import _samples_frame
from bench.records import ClientResult, Receipt, Send, SessionRecord, build_samples
from bench.scenario import Case
from bench.summary import CaseOutcome, summarize_case

# BENCHMARKS.md "Fidelity: our WebRTC client vs Chromium", run 1: Chromium / ours = 1.61 (p50), 1.54 (p95)
WEBRTC_ROWS = [
    ("latency_p50_ms", 92.2, 57.3, False),
    ("latency_p95_ms", 140.8, 91.6, False),
    ("fps", 24.4, 30.1, False),
    ("delivered_ratio", 0.821, 1.0, False),
]
SETTINGS = {"duration_s": 10.0, "warmup_s": 2.0}


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The user's directory ($STREAMBENCH_FIDELITY_DIR) and a stand-in for the shipped reference, both empty."""
    user, shipped = tmp_path / "user", tmp_path / "shipped"
    monkeypatch.setenv(ENV_DIR, str(user))
    monkeypatch.setattr(fidelity_store, "SHIPPED_DIR", shipped)
    return user, shipped


def summarize(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """One launch of a synthetic case whose every frame is shown 50 ms after capture, summarized as a run does."""
    capture = {i: i / 30 for i in range(300)}
    result = ClientResult(
        sends=[Send(0, i, t + 0.01) for i, t in capture.items()],
        receipts=[Receipt(0, i, t + 0.05) for i, t in capture.items()],
        sessions=[SessionRecord(0)],
    )
    rows = build_samples(result, capture, grace_end_s=10.0, listen_end_s=11.0)
    case = Case("t", kind, "flip", {"fps": 30} | settings)
    outcome = CaseOutcome(
        case_id=case.case_id,
        target=case.target,
        kind=kind,
        transform=case.transform,
        params={},
        settings=case.settings,
        samples=_samples_frame(rows, 0.0, 1.0, case, 0),
        window_s=9.0,
        repeats=1,
        sessions=result.sessions,
    )
    return summarize_case(outcome)


def cited(summary: dict[str, Any]) -> list[str]:
    return [note for note in summary["notes"] if "when last measured" in note]


def test_a_stored_fidelity_reads_back_as_written(tmp_path: Path):
    stored = measured("fastrtc-webrtc", WEBRTC_ROWS, 0.15, SETTINGS, "Chromium 156.0.8078.108")
    path = save(tmp_path, stored)
    assert path == tmp_path / "fastrtc-webrtc.json"
    assert load(path) == stored
    data = json.loads(path.read_text())
    assert data["client"] == "webrtc" and data["schema_version"] == 1
    assert set(data["packages"]) == {"gradio", "fastrtc", "aiortc"}
    assert "hostname" not in json.dumps(data["machine"]) and data["machine"]["cpu_count"]
    p50 = data["metrics"][0]
    assert (p50["chromium"], p50["synthetic"], p50["agrees"]) == (92.2, 57.3, False)
    assert p50["chromium_over_synthetic"] == pytest.approx(92.2 / 57.3)


def test_a_synthetic_case_cites_the_stored_ratio(stores: tuple[Path, Path]):
    stored = measured("fastrtc-webrtc", WEBRTC_ROWS, 0.15, SETTINGS, "Chromium 156.0.8078.108")
    save(stores[0], stored)
    (note,) = cited(summarize("fastrtc-webrtc", {}))  # the kind's default client: webrtc
    assert note.startswith("our webrtc client read content latency p50 1.61x below and p95 1.54x below what Chromium")
    assert stored.date[:10] in note and "Chromium 156.0.8078.108" in note
    assert "bench fidelity --kind fastrtc-webrtc" in note


def test_ours_above_chromium_is_said_the_other_way(stores: tuple[Path, Path]):
    """BENCHMARKS.md run 2: Chromium's p95 0.68 of ours, i.e. ours 1.47x above."""
    rows = [("latency_p50_ms", 88.9, 75.9, False), ("latency_p95_ms", 120.0, 176.2, False)]
    save(stores[0], measured("fastrtc-webrtc", rows, 0.15, SETTINGS, None))
    assert "content latency p50 1.17x below and p95 1.47x above what" in fidelity_note("fastrtc-webrtc", "webrtc")


def test_a_chromium_case_and_a_kind_without_a_file_carry_no_such_note(stores: tuple[Path, Path]):
    save(stores[0], measured("fastrtc-webrtc", WEBRTC_ROWS, 0.15, SETTINGS, None))
    assert cited(summarize("fastrtc-webrtc", {"client": "chromium"})) == []
    assert cited(summarize("gradio-stream", {})) == [], "no gradio-stream.json anywhere: nothing invented"
    assert cited(summarize("aiortc-echo", {})) == [], "same client, another kind: not what was measured"


@pytest.mark.parametrize(
    "text",
    ["{not json", json.dumps({"schema_version": 99, "kind": "fastrtc-webrtc"}), json.dumps({"schema_version": 1})],
    ids=["corrupt", "foreign-version", "missing-fields"],
)
def test_an_unreadable_file_is_skipped_with_a_warning_line(
    stores: tuple[Path, Path], text: str, caplog: pytest.LogCaptureFixture
):
    user, shipped = stores
    user.mkdir()
    (user / "fastrtc-webrtc.json").write_text(text)
    with caplog.at_level(logging.WARNING, logger="bench.fidelity_store"):
        assert cited(summarize("fastrtc-webrtc", {})) == []
    (warning,) = caplog.records
    assert "ignoring stored fidelity" in warning.getMessage() and "fastrtc-webrtc.json" in warning.getMessage()
    # the shipped reference still answers behind it
    save(shipped, measured("fastrtc-webrtc", WEBRTC_ROWS, 0.15, SETTINGS, None))
    assert len(cited(summarize("fastrtc-webrtc", {}))) == 1
