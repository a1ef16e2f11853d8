"""What a user sees: freezes against gaps built into synthetic runs, and the resolution and bitrate received
(against a real aiortc echo in tests/test_run_e2e.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.measure import _samples_frame
from bench.records import ClientResult, Receipt, Send, SessionRecord, build_samples
from bench.scenario import Case
from bench.summary import CaseOutcome, summarize_case

DURATION_S, WARMUP_S = 10.0, 1.0


def summarize(result: ClientResult, fps: float, users: int = 1, app_settings: dict[str, Any] | None = None) -> dict:
    """The summary of one launch, through the rows and samples frame the runner builds (camera started at 0 s)."""
    capture = {i: i / fps for i in range(int(DURATION_S * fps) + 1) if i / fps <= DURATION_S}
    rows = build_samples(result, capture, grace_end_s=DURATION_S, listen_end_s=DURATION_S + 1)
    case = Case("t", "aiortc-echo", "identity", {"fps": fps, "users": users})
    outcome = CaseOutcome(
        case_id=case.case_id,
        target=case.target,
        kind=case.kind,
        transform=case.transform,
        params={},
        settings=case.settings,
        samples=_samples_frame(rows, 0.0, WARMUP_S, case, 0),
        window_s=DURATION_S - WARMUP_S,
        repeats=1,
        sessions=result.sessions,
        app_settings=app_settings or {},
    )
    return summarize_case(outcome)


def every_frame(user: int, fps: float, lost: set[int]) -> ClientResult:
    """A WebRTC-like user: every camera frame sent, each shown 50 ms after capture except the `lost` ones."""
    frames = range(int(DURATION_S * fps) + 1)
    return ClientResult(
        sends=[Send(user, i, i / fps + 0.01) for i in frames],
        receipts=[Receipt(user, i, i / fps + 0.05) for i in frames if i not in lost],
        sessions=[SessionRecord(user)],
    )


def merged(*results: ClientResult) -> ClientResult:
    return ClientResult(
        sends=[s for r in results for s in r.sends],
        receipts=[x for r in results for x in r.receipts],
        sessions=[s for r in results for s in r.sessions],
    )


def test_a_gap_longer_than_three_frame_intervals_is_a_freeze_of_its_length():
    """10 fps: frames 40-59 never shown freeze the picture from frame 39's display (3.95 s) to frame 60's (6.05 s);
    one lost frame (80) is a 0.2 s gap, under 3 intervals (0.3 s), so no freeze. The second user sees every frame."""
    summary = summarize(merged(every_frame(0, 10, set(range(40, 60)) | {80}), every_frame(1, 10, set())), 10, users=2)
    assert summary["freezes"] == pytest.approx((1 + 0) / 2), "averaged per user"
    assert summary["frozen_s"] == pytest.approx((2.1 + 0) / 2)
    assert summary["lost"] == 21, "the existing counts are untouched"


def test_a_freeze_running_into_the_end_of_the_window_counts_until_its_end():
    """Outputs stop after frame 79 (shown at 7.95 s), the window ends with the last camera frame at 10 s."""
    summary = summarize(every_frame(0, 10, set(range(80, 101))), 10)
    assert summary["freezes"] == 1
    assert summary["frozen_s"] == pytest.approx(10.0 - 7.95)


def test_a_stream_client_freezes_against_its_stream_every_not_the_camera_rate():
    """A 30 fps camera sampled every 0.2 s: a new output is due every 0.2 s, so a freeze needs more than 0.6 s.

    One missing output (a 0.4 s gap, a freeze at the camera's rate) is none; three in a row (0.8 s) is one."""
    ticks, missing = range(int(DURATION_S / 0.2) + 1), {15, 30, 31, 32}
    result = ClientResult(
        sends=[Send(0, 6 * k, 0.2 * k) for k in ticks],
        receipts=[Receipt(0, 6 * k, 0.2 * k + 0.05) for k in ticks if k not in missing],
        sessions=[SessionRecord(0)],
    )
    summary = summarize(result, 30, app_settings={"stream_every": 0.2})
    assert summary["freezes"] == 1
    assert summary["frozen_s"] == pytest.approx(6.65 - 5.85), "from tick 29's output to tick 33's"


def test_received_resolution_and_bitrate_come_from_the_sessions():
    result = merged(every_frame(0, 10, set()), every_frame(1, 10, set()))
    summary = summarize(result, 10, users=2)
    assert summary["received_resolution"] is None and summary["received_kbps"] is None, "nothing recorded"
    first, second = result.sessions
    first.resolutions, first.received_bytes, first.received_s = {"640x480": 40, "320x240": 10}, 500_000, 4.0
    second.resolutions, second.received_bytes, second.received_s = {"640x480": 50}, 300_000, 4.0
    summary = summarize(result, 10, users=2)
    assert summary["received_resolution"] == {"most_common": "640x480", "min": "320x240"}
    assert summary["received_kbps"] == pytest.approx((500_000 + 300_000) * 8 / 1000 / 8.0)
