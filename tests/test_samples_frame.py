"""The samples.parquet columns the summary reads: censored event latencies and output orientation."""

from __future__ import annotations

import pytest

from bench.measure import _samples_frame
from bench.records import ClientResult, Receipt, Send, SessionRecord, build_samples
from bench.scenario import Case


def test_samples_frame_has_event_censored_and_orientation_columns():
    capture = {i: 10 + i * 0.5 for i in range(4)}
    result = ClientResult(
        sends=[Send(0, i, 10 + i * 0.5) for i in range(4)],
        receipts=[Receipt(0, 0, 10.1, orientation="flip_ud")],
        sessions=[SessionRecord(0)],
    )
    rows = build_samples(result, capture, grace_end_s=12, listen_end_s=13)
    frame = _samples_frame(rows, 10.0, 0.0, Case("t", "gradio-stream", "flip", {}), 0)
    assert frame["event_censored"].tolist() == [False, True, True, True]
    assert frame["event_latency_ms"].tolist()[1:] == pytest.approx([2500, 2000, 1500])
    assert frame["orientation"].tolist() == ["flip_ud", None, None, None]
