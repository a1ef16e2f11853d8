"""Records every client produces, and their reduction to one row per camera frame.

All times are `time.perf_counter()` seconds in the harness process (the virtual
camera's clock), so latencies never mix clocks.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.spool import Spool

SessionStatus = Literal["ok", "rejected", "failed"]
SampleStatus = Literal["ok", "lost", "skipped"]
CLIENT_ERROR = "streambench client error"  # starts a session error caused by the harness, not the target
COMPARE_EVERY = 10  # a user's app: one decoded output in this many is compared with the frame sent


@dataclass(frozen=True)
class Receipt:
    """One output the client displayed: which camera frame it shows, when it was ready, which way up.

    `orientation` is relative to the camera frame (e.g. "flip_ud"), so a check can
    tell which transform an output went through, before and after a mid-stream switch.
    """

    user: int
    sample_id: int
    recv_s: float
    stages_ms: dict[str, float] = field(default_factory=dict)
    orientation: str | None = None


@dataclass(frozen=True)
class OutputLook:
    """One returned image's signature (`bench.media.scene_change`), for change-detection latency in scene mode."""

    user: int
    recv_s: float
    signature: Any  # a small float32 numpy vector


@dataclass(frozen=True)
class Send:
    """One camera frame the client transmitted."""

    user: int
    sample_id: int
    send_s: float


@dataclass
class SessionRecord:
    """One user's session: set-up phases (ms from the first request), how it ended, and what media it received.

    The received resolutions and bitrate show what a sender adapted to (a WebRTC encoder under a
    bandwidth cap lowers its bitrate or resolution); latency alone would not.
    """

    user: int
    status: SessionStatus = "ok"
    error: str | None = None
    phases_ms: dict[str, float] = field(default_factory=dict)
    resolutions: dict[str, int] = field(default_factory=dict)  # "WxH" of each received frame -> frames
    received_bytes: int = 0  # media bytes received
    received_s: float | None = None  # over this long: from the first media (connected / process_starts) to the end

    def received_frame(self, width: int, height: int) -> None:
        key = f"{width}x{height}"
        self.resolutions[key] = self.resolutions.get(key, 0) + 1


@dataclass
class ClientResult:
    """What a client run returns; `bench.records.build_samples` turns it into rows."""

    # per-frame records go to disk as they come (bench.spool): a long many-user run keeps a flat memory
    sends: Spool[Send] = field(default_factory=Spool)
    receipts: Spool[Receipt] = field(default_factory=Spool)
    sessions: list[SessionRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    undecoded: int = 0
    orientations: dict[str, int] = field(default_factory=dict)
    app_settings: dict[str, Any] = field(default_factory=dict)  # what the client read from the app, e.g. stream_every
    tick_lag_ms: list[float] = field(default_factory=list)  # how late each capture tick fired (client lag)
    network_stats: list[Any] = field(default_factory=list)  # bench.network PathStats of the relays crossed
    client_errors: list[str] = field(default_factory=list)  # exceptions in the client's own receivers
    warnings: list[str] = field(default_factory=list)  # the app works, but not the way the case asked
    # when each sample was made, for samples the target makes itself (a generator's yield stamps, perf_counter
    # seconds: CLOCK_MONOTONIC is one clock for every process on the machine); replaces the source's capture times
    origin_times: dict[int, float] = field(default_factory=dict)
    # per-case measurements beyond per-sample latency (HLS rebuffers, per-policy glass-to-glass, ...):
    # a list is raw values pooled over repeats and reported as quantiles, a number is summed over repeats
    metrics: dict[str, Any] = field(default_factory=dict)
    # every returned image's signature when the camera is in scene mode (a user's app: its outputs may lose the marker)
    looks: Spool[OutputLook] = field(default_factory=Spool)
    # a user's app's decoded outputs compared with the frame sent (one in COMPARE_EVERY), and how many were that frame
    compared_outputs: int = 0
    unchanged_outputs: int = 0
    harness_notes: list[str] = field(default_factory=list)  # what streambench changed inside an app it started

    def add_client_error(self, where: str, exc: BaseException) -> str:
        """Keep a harness bug apart from target faults; returns the line recorded."""
        line = f"{where}: {type(exc).__name__}: {exc}"
        self.client_errors.append(line)
        return line

    def compare_due(self, params: dict[str, Any]) -> bool:
        """Compare the output just decoded (the last receipt) with the frame sent? Only a user's app's, one in
        COMPARE_EVERY: rendering the frame again and comparing costs up to ~2 ms of CPU at 640x480."""
        return bool(params.get("url") or params.get("app")) and len(self.receipts) % COMPARE_EVERY == 1

    def compared(self, unchanged: bool) -> None:
        """Count one output compared with the frame sent, and whether it was that frame within codec noise."""
        self.compared_outputs += 1
        self.unchanged_outputs += unchanged


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
    event_censored: bool = False  # no output came before listening ended: event_latency_ms is a lower bound
    orientation: str | None = None  # of the first display


def build_samples(
    result: ClientResult,
    capture_times: dict[int, float],
    grace_end_s: float,
    *,
    listen_end_s: float,
) -> list[Sample]:
    """One row per (user, camera frame): content latency if shown, event latency always.

    `capture_times` maps every frame the camera produced during the run to its
    capture time. A frame sent but never shown is `lost`; a frame never sent
    (a `.stream()` client samples only the latest frame at each tick) is
    `skipped`. Event latency is the wait until the first output showing that
    frame or a later one. A frame captured while the user was streaming (first
    to last send) that no output ever superseded waited at least until the client
    stopped listening (`listen_end_s`): it is kept, censored, so a target that
    freezes shows in the percentiles instead of vanishing from them. Frames
    captured after `grace_end_s` are left out: no output could reasonably have
    arrived for them before the run stopped.
    """
    rows = samples_by_user(result, capture_times, grace_end_s, listen_end_s=listen_end_s)
    return [row for user_rows in rows for row in user_rows]


def samples_by_user(
    result: ClientResult,
    capture_times: dict[int, float],
    grace_end_s: float,
    *,
    listen_end_s: float,
) -> Iterator[list[Sample]]:
    """`build_samples`, one user at a time: only one user's rows are ever in memory (records stay spooled)."""
    users = sorted(
        {s.user for s in result.sessions} | {r.user for r in result.receipts} | {s.user for s in result.sends}
    )
    frames = {i: t for i, t in sorted(capture_times.items()) if t <= grace_end_s}
    for user in users:
        yield _user_samples(result, user, frames, listen_end_s)


def _user_samples(
    result: ClientResult, user: int, capture_times: dict[int, float], listen_end_s: float
) -> list[Sample]:
    """One user's rows: each user has its own sends, displays and streaming window."""
    sends = sorted((s for s in result.sends if s.user == user), key=lambda s: s.send_s)
    first_sent: dict[int, float] = {}
    for send in sends:  # a repeated frame was on its way from its first send; later ones may postdate its display
        first_sent.setdefault(send.sample_id, send.send_s)
    first_shown: dict[int, Receipt] = {}
    for receipt in sorted((r for r in result.receipts if r.user == user), key=lambda r: r.recv_s):
        first_shown.setdefault(receipt.sample_id, receipt)
    shown_ids, shown_times = _running_max_display(first_shown)
    rows = []
    for frame_id, capture_s in capture_times.items():
        receipt = first_shown.get(frame_id)
        send_s = first_sent.get(frame_id)
        event_latency = _first_display_at_or_after(frame_id, capture_s, shown_ids, shown_times)
        censored = event_latency is None and bool(sends) and sends[0].send_s <= capture_s <= sends[-1].send_s
        rows.append(
            Sample(
                user=user,
                sample_id=frame_id,
                capture_s=capture_s,
                send_s=send_s,
                recv_s=receipt.recv_s if receipt else None,
                latency_ms=(receipt.recv_s - capture_s) * 1000 if receipt else None,
                event_latency_ms=(listen_end_s - capture_s) * 1000 if censored else event_latency,
                status=_status(receipt, send_s),
                stages_ms=dict(receipt.stages_ms) if receipt else {},
                event_censored=censored,
                orientation=receipt.orientation if receipt else None,
            )
        )
    return rows


def _status(receipt: Receipt | None, send_s: float | None) -> SampleStatus:
    """Shown beats sent: a frame shown counts as delivered however many times it was sent."""
    if receipt is not None:
        return "ok"
    return "lost" if send_s is not None else "skipped"


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
