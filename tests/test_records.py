"""One row per camera frame: lost, skipped and shown frames, and event-to-display latency."""

from __future__ import annotations

import pytest

from bench.records import ClientResult, Receipt, Send, SessionRecord, build_samples


def test_rows_classify_frames_and_measure_both_latencies():
    capture = {i: i * 0.1 for i in range(6)}
    result = ClientResult(
        sends=[Send(0, 0, 0.0), Send(0, 2, 0.2), Send(0, 4, 0.4)],
        receipts=[Receipt(0, 0, 0.05), Receipt(0, 4, 0.47), Receipt(0, 4, 0.6)],
        sessions=[SessionRecord(0)],
    )
    rows = {r.sample_id: r for r in build_samples(result, capture, grace_end_s=10)}
    assert [rows[i].status for i in range(6)] == ["ok", "skipped", "lost", "skipped", "ok", "skipped"]
    assert rows[0].latency_ms == pytest.approx(50)
    assert rows[4].latency_ms == pytest.approx(70), "first display counts, not the duplicate"
    # frames 1..3 are first superseded by frame 4's display at 0.47 s
    assert rows[1].event_latency_ms == pytest.approx(370)
    assert rows[3].event_latency_ms == pytest.approx(170)
    assert rows[5].event_latency_ms is None


def test_frames_after_grace_end_are_left_out():
    capture = {i: float(i) for i in range(5)}
    result = ClientResult(sends=[Send(0, i, float(i)) for i in range(5)], sessions=[SessionRecord(0)])
    assert [r.sample_id for r in build_samples(result, capture, grace_end_s=2.5)] == [0, 1, 2]


def test_each_user_gets_its_own_rows():
    capture = {0: 0.0}
    result = ClientResult(
        receipts=[Receipt(0, 0, 0.1), Receipt(1, 0, 0.3)], sessions=[SessionRecord(0), SessionRecord(1)]
    )
    rows = build_samples(result, capture, grace_end_s=1)
    assert sorted((r.user, round(r.latency_ms)) for r in rows) == [(0, 100), (1, 300)]
