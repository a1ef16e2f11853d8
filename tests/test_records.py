"""One row per camera frame: lost, skipped and shown frames, event-to-display latency, censoring, orientation."""

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
    rows = {r.sample_id: r for r in build_samples(result, capture, grace_end_s=10, listen_end_s=11)}
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
    assert [r.sample_id for r in build_samples(result, capture, grace_end_s=2.5, listen_end_s=3.5)] == [0, 1, 2]


def test_each_user_gets_its_own_rows():
    capture = {0: 0.0}
    result = ClientResult(
        receipts=[Receipt(0, 0, 0.1), Receipt(1, 0, 0.3)], sessions=[SessionRecord(0), SessionRecord(1)]
    )
    rows = build_samples(result, capture, grace_end_s=1, listen_end_s=2)
    assert sorted((r.user, round(r.latency_ms)) for r in rows) == [(0, 100), (1, 300)]


def test_a_frame_sent_twice_is_timed_from_its_first_send():
    """A `.stream()` tick faster than the camera sends one frame again; its output answers the first send."""
    capture = {0: 0.0, 1: 0.25}
    result = ClientResult(
        sends=[Send(0, 0, 0.01), Send(0, 0, 0.11), Send(0, 0, 0.21), Send(0, 1, 0.26)],
        receipts=[Receipt(0, 0, 0.06), Receipt(0, 0, 0.16), Receipt(0, 1, 0.31)],
        sessions=[SessionRecord(0)],
    )
    rows = {r.sample_id: r for r in build_samples(result, capture, grace_end_s=1, listen_end_s=2)}
    assert rows[0].send_s == pytest.approx(0.01)
    assert rows[0].send_s <= rows[0].recv_s, "a frame is shown after it was sent"


def test_frames_a_frozen_target_never_answers_are_censored_at_listen_end():
    """Outputs stop at 1 s while the client streams on to 1.9 s: the freeze must not vanish from event latency."""
    capture = {i: i * 0.1 for i in range(30)}
    result = ClientResult(
        sends=[Send(0, i, i * 0.1 + 0.01) for i in range(20)],
        receipts=[Receipt(0, i, i * 0.1 + 0.05) for i in range(10)],
        sessions=[SessionRecord(0)],
    )
    rows = {r.sample_id: r for r in build_samples(result, capture, grace_end_s=2.5, listen_end_s=3.5)}
    assert sorted(rows) == list(range(26))
    for i in range(10):
        assert rows[i].event_latency_ms == pytest.approx(50) and not rows[i].event_censored
    frozen = [rows[i] for i in range(10, 20)]
    assert all(r.event_censored for r in frozen)
    # captured at 1.0 .. 1.9 s, nothing shown before the client stopped listening at 3.5 s: at least 2.5 .. 1.6 s
    assert [r.event_latency_ms for r in frozen] == pytest.approx([2500 - 100 * k for k in range(10)])
    # captured after the last send (1.91 s): never sent, nothing to wait for
    assert all(rows[i].event_latency_ms is None and not rows[i].event_censored for i in range(20, 26))


def test_censoring_follows_each_users_own_streaming_window():
    capture = {i: float(i) for i in range(6)}
    result = ClientResult(
        sends=[Send(0, i, i + 0.01) for i in range(6)] + [Send(1, i, i + 0.01) for i in range(2)],
        receipts=[Receipt(0, 5, 5.1), Receipt(1, 0, 0.1)],
        sessions=[SessionRecord(0), SessionRecord(1)],
    )
    rows = {(r.user, r.sample_id): r for r in build_samples(result, capture, grace_end_s=6, listen_end_s=7)}
    assert not any(rows[0, i].event_censored for i in range(6)), "user 0 saw every frame superseded"
    assert rows[1, 1].event_censored and rows[1, 1].event_latency_ms == pytest.approx(6000)
    assert [rows[1, i].event_latency_ms for i in range(2, 6)] == [None] * 4, "user 1 had stopped streaming"


def test_a_row_carries_the_orientation_of_the_first_display():
    capture = {0: 0.0, 1: 0.1}
    result = ClientResult(
        sends=[Send(0, 0, 0.0), Send(0, 1, 0.1)],
        receipts=[Receipt(0, 0, 0.2, orientation="flip_ud"), Receipt(0, 0, 0.1, orientation="identity")],
        sessions=[SessionRecord(0)],
    )
    rows = build_samples(result, capture, grace_end_s=1, listen_end_s=2)
    assert [(r.sample_id, r.orientation) for r in rows] == [(0, "identity"), (1, None)]
