"""Records every client produces, and their reduction to one row per camera frame.

All times are `time.perf_counter()` seconds in the harness process (the virtual
camera's clock), so latencies never mix clocks.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Literal

SessionStatus = Literal["ok", "rejected", "failed"]
SampleStatus = Literal["ok", "lost", "skipped"]


@dataclass(frozen=True)
class Receipt:
    """One output the client displayed: which camera frame it shows and when it was ready."""

    user: int
    sample_id: int
    recv_s: float
    stages_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Send:
    """One camera frame the client transmitted."""

    user: int
    sample_id: int
    send_s: float


@dataclass
class SessionRecord:
    """One user's session: set-up phases (ms from the first request) and how it ended."""

    user: int
    status: SessionStatus = "ok"
    error: str | None = None
    phases_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class ClientResult:
    """What a client run returns; `bench.records.build_samples` turns it into rows."""

    sends: list[Send] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    sessions: list[SessionRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    undecoded: int = 0
    orientations: dict[str, int] = field(default_factory=dict)
    client_cpu_percent: float | None = None
    app_settings: dict[str, Any] = field(default_factory=dict)  # what the client read from the app, e.g. stream_every


@dataclass(frozen=True)
class Sample:
    """One camera frame as one user experienced it (the samples.parquet row)."""

    user: int
    sample_id: int
    capture_s: float
    send_s: float | None
    recv_s: float | None
    latency_ms: float | None
    event_latency_ms: float | None
    status: SampleStatus
    stages_ms: dict[str, float] = field(default_factory=dict)


def build_samples(
    result: ClientResult,
    capture_times: dict[int, float],
    grace_end_s: float,
) -> list[Sample]:
    """One row per (user, camera frame): content latency if shown, event latency always.

    `capture_times` maps every frame the camera produced during the run to its
    capture time. A frame sent but never shown is `lost`; a frame never sent
    (a `.stream()` client samples only the latest frame at each tick) is
    `skipped`. Event latency is the wait until the first output showing that
    frame or a later one. Frames captured after `grace_end_s` are left out: no
    output could reasonably have arrived for them before the run stopped.
    """
    users = sorted(
        {s.user for s in result.sessions} | {r.user for r in result.receipts} | {s.user for s in result.sends}
    )
    rows: list[Sample] = []
    for user in users:
        sends = {s.sample_id: s.send_s for s in result.sends if s.user == user}
        first_shown: dict[int, Receipt] = {}
        for receipt in sorted((r for r in result.receipts if r.user == user), key=lambda r: r.recv_s):
            first_shown.setdefault(receipt.sample_id, receipt)
        shown_ids, shown_times = _running_max_display(first_shown)
        for frame_id, capture_s in sorted(capture_times.items()):
            if capture_s > grace_end_s:
                continue
            receipt = first_shown.get(frame_id)
            send_s = sends.get(frame_id)
            event_latency = _first_display_at_or_after(frame_id, capture_s, shown_ids, shown_times)
            if receipt is not None:
                status: SampleStatus = "ok"
            elif send_s is not None:
                status = "lost"
            else:
                status = "skipped"
            rows.append(
                Sample(
                    user=user,
                    sample_id=frame_id,
                    capture_s=capture_s,
                    send_s=send_s,
                    recv_s=receipt.recv_s if receipt else None,
                    latency_ms=(receipt.recv_s - capture_s) * 1000 if receipt else None,
                    event_latency_ms=event_latency,
                    status=status,
                    stages_ms=dict(receipt.stages_ms) if receipt else {},
                )
            )
    return rows


def _running_max_display(first_shown: dict[int, Receipt]) -> tuple[list[int], list[float]]:
    """Outputs in display order, keeping only those that advance the newest frame shown."""
    ids: list[int] = []
    times: list[float] = []
    for receipt in sorted(first_shown.values(), key=lambda r: r.recv_s):
        if not ids or receipt.sample_id > ids[-1]:
            ids.append(receipt.sample_id)
            times.append(receipt.recv_s)
    return ids, times


def _first_display_at_or_after(frame_id: int, capture_s: float, ids: list[int], times: list[float]) -> float | None:
    index = bisect.bisect_left(ids, frame_id)
    if index == len(ids):
        return None
    return (times[index] - capture_s) * 1000
