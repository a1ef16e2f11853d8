"""What a user of the case saw beyond latency: freezes, and the resolution and bitrate a sender adapted to."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bench.records import SessionRecord

if TYPE_CHECKING:
    from bench.summary import CaseOutcome

FREEZE_INTERVALS = 3  # no new frame for over this many expected output intervals: a freeze (webrtc-stats uses 3 too)


def output_interval_s(outcome: CaseOutcome) -> float | None:
    """How often a user should see a new frame: each camera frame, or each `stream_every` tick of a `.stream()`
    client (`app_settings` has it only then), whichever is slower: no timer shows frames the camera never made."""
    fps = outcome.settings.get("fps")
    camera_s = 1 / float(fps) if fps else None
    stream_every = outcome.app_settings.get("stream_every")
    if stream_every is None:
        return camera_s
    return max(float(stream_every), camera_s or 0.0)


def freezes(outcome: CaseOutcome, measured: pd.DataFrame, users: int) -> tuple[float | None, float | None]:
    """Seconds of the measured window each user saw no new frame for longer than FREEZE_INTERVALS output
    intervals, and how many such freezes, both averaged per user and launch.

    A freeze lasts from the last new frame (one newer than any shown before) to the next, as
    webrtc-stats' totalFreezesDuration counts it; the measured window runs from the first to the last
    camera frame after the warm-up. A user who saw nothing was frozen for the whole window.
    """
    interval = output_interval_s(outcome)
    if interval is None or not len(measured):
        return None, None
    limit = FREEZE_INTERVALS * interval
    start, end = float(measured["capture_s"].min()), float(measured["capture_s"].max())
    shown = outcome.samples[outcome.samples["status"] == "ok"].sort_values("recv_s")
    frozen = count = 0.0
    repeats = outcome.samples["repeat"].unique()
    for repeat in repeats:
        for user in range(users):
            mine = shown[(shown["repeat"] == repeat) & (shown["user"] == user)]
            new = mine["recv_s"][mine["sample_id"] == mine["sample_id"].cummax()].to_numpy()
            before = new[new <= start]
            marks = np.concatenate(([before[-1] if len(before) else start], new[(new > start) & (new < end)], [end]))
            gaps = np.diff(marks)
            inside = np.diff(np.maximum(marks, start))  # a freeze begun before the window counts from its start
            frozen += float(inside[gaps > limit].sum())
            count += int((gaps > limit).sum())
    pairs = len(repeats) * users
    return frozen / pairs, count / pairs


def received_resolution(sessions: list[SessionRecord]) -> dict[str, str] | None:
    """The most common and the smallest WxH of the frames received: what a sender under a cap scaled down to."""
    counts: Counter[str] = Counter()
    for session in sessions:
        counts.update(session.resolutions)
    if not counts:
        return None

    def pixels(size: str) -> int:
        width, height = size.split("x")
        return int(width) * int(height)

    return {"most_common": counts.most_common(1)[0][0], "min": min(counts, key=pixels)}


def received_kbps(sessions: list[SessionRecord]) -> float | None:
    """Media received per user, in kbit/s over each session's receiving time: what a sender adapted its bitrate to."""
    seconds = sum(s.received_s or 0.0 for s in sessions)
    return sum(s.received_bytes for s in sessions) * 8 / 1000 / seconds if seconds else None
