"""Per-case summary: the `summary.json` contract (DESIGN.md) is produced here and only here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.records import SessionRecord
from bench.stats import growth_slope, latency_stats

EXPECTED_ORIENTATION = {"flip": "flip_ud"}
BACKLOG_SLOPE_MS_PER_S = 10.0
BACKLOG_MIN_RISE_MS = 100.0


@dataclass
class CaseOutcome:
    """Everything measured for one case (all its repeats), before reduction."""

    case_id: str
    target: str
    kind: str
    transform: str
    params: dict[str, Any]
    settings: dict[str, Any]
    samples: pd.DataFrame
    window_s: float
    repeats: int
    sessions: list[SessionRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    undecoded: int = 0
    orientations: dict[str, int] = field(default_factory=dict)
    client_cpu_percent: list[float] = field(default_factory=list)
    app_settings: dict[str, Any] = field(default_factory=dict)


def summarize_case(outcome: CaseOutcome) -> dict[str, Any]:
    frame = outcome.samples
    measured = frame[~frame["warmup"]] if len(frame) else frame
    shown = measured[measured["status"] == "ok"] if len(measured) else measured
    sent = int((measured["status"] != "skipped").sum()) if len(measured) else 0
    lost = int((measured["status"] == "lost").sum()) if len(measured) else 0
    users = int(outcome.settings.get("users") or 1)
    latency = latency_stats(shown["latency_ms"].to_numpy()) if len(shown) else None
    event = latency_stats(measured["event_latency_ms"].dropna().to_numpy()) if len(measured) else None
    slope = growth_slope(shown["capture_s"], shown["latency_ms"]) if len(shown) else None
    rejected = sum(1 for s in outcome.sessions if s.status == "rejected")
    failed = sum(1 for s in outcome.sessions if s.status == "failed")
    warnings = _warnings(outcome, shown, slope)
    if latency is None:
        status = "failed"
    elif failed or rejected or outcome.errors:
        status = "partial"
    else:
        status = "ok"
    summary: dict[str, Any] = {
        "case": outcome.case_id,
        "target": outcome.target,
        "kind": outcome.kind,
        "transform": outcome.transform,
        "params": outcome.params,
        "settings": outcome.app_settings | {k: v for k, v in outcome.settings.items() if v is not None},
        "status": status,
        "n": latency.n if latency else 0,
        "sent": sent,
        "lost": lost,
        "lost_ratio": lost / sent if sent else 0.0,
        "fps": _rate(len(shown), outcome.window_s * users * outcome.repeats),
        "errors": len(outcome.errors),
        "rejected": rejected,
        "failed_sessions": failed,
        "undecoded": outcome.undecoded,
        "orientations": outcome.orientations,
        "latency_ms": latency.to_dict() if latency else None,
        "event_latency_ms": event.to_dict() if event else None,
        "growth_ms_per_s": slope,
        "backlog": _is_backlog(slope, outcome.window_s),
        "setup_ms": _phase_stats(outcome.sessions),
        "switch_to_output_ms": _switch_stats(outcome.sessions),
        "per_user": _per_user(shown, outcome, users) if users > 1 else [],
        "sessions": [
            {"user": s.user, "status": s.status, "error": s.error, "phases_ms": s.phases_ms} for s in outcome.sessions
        ],
        "repeats": outcome.repeats,
        "client_cpu_percent": max(outcome.client_cpu_percent) if outcome.client_cpu_percent else None,
        "warnings": warnings,
        "notes": _notes(outcome, lost, sent),
    }
    if outcome.errors:
        summary["error"] = outcome.errors[0]
    return summary


def _notes(outcome: CaseOutcome, lost: int, sent: int) -> list[str]:
    """Known behaviour of the framework under test that explains a number (see BENCHMARKS.md, Findings)."""
    notes = []
    fps = float(outcome.settings.get("fps") or 0)
    if outcome.kind in ("fastrtc-webrtc", "aiortc-echo") and fps:
        notes.append(
            f"includes {1000 / fps:.0f} ms (one frame interval) that the server's aiortc receiver holds each frame "
            "until the next frame's first packet arrives; a browser receiver, like our client, does not"
        )
    if outcome.kind == "gradio-stream" and lost:
        notes.append(
            f"{lost} of {sent} sent frames ({lost / sent:.0%}) were never shown: a .stream() server keeps only the "
            "newest unprocessed frame, so frames are dropped, not queued"
        )
    if outcome.kind == "gradio-stream":
        notes.append(
            "measured by a client that does what Gradio's frontend does; a real Chromium on the same app adds its own "
            "JS and image decoding to each output (7-26 ms on our 2-core reference machine): run `bench fidelity`"
        )
        if int(outcome.settings.get("users") or 1) > int(outcome.settings.get("concurrency_limit") or 1):
            notes.append(
                "more users than concurrency slots: in a real browser, a user who clicks Stop but keeps the tab open "
                "holds the slot about 30 s longer (no time_limit); our client leaves like a closed tab"
            )
    if outcome.kind == "gradio-stream" and outcome.settings.get("time_limit"):
        notes.append(
            "time_limit is counted from when the event gets a concurrency slot, not from joining the queue "
            "(see per_user streamed_ms)"
        )
    return notes


def _is_backlog(slope: float | None, window_s: float) -> bool:
    return slope is not None and slope > BACKLOG_SLOPE_MS_PER_S and slope * window_s > BACKLOG_MIN_RISE_MS


def _warnings(outcome: CaseOutcome, shown: pd.DataFrame, slope: float | None) -> list[str]:
    warnings: list[str] = []
    if _is_backlog(slope, outcome.window_s):
        warnings.append(
            f"backlog: latency grows {slope:.0f} ms per s ({slope * outcome.window_s:.0f} ms over the run); "
            "the target falls behind the source, so percentiles depend on run length"
        )
    expected = EXPECTED_ORIENTATION.get(outcome.transform, "identity")
    if outcome.orientations:
        seen = max(outcome.orientations, key=outcome.orientations.__getitem__)
        if seen != expected:
            warnings.append(
                f"outputs show orientation {seen!r}, expected {expected!r} for transform "
                f"{outcome.transform!r}: the transform did not run (inputs not set?)"
            )
    cpu = max(outcome.client_cpu_percent, default=0.0)
    if cpu > 80:
        warnings.append(f"harness process used {cpu:.0f} % of a core: the client may be the bottleneck")
    return warnings


def _switch_stats(sessions: list[SessionRecord]) -> dict[str, float] | None:
    """Delay from a mid-stream input change to the first output showing it (None if no switch)."""
    values = [s.phases_ms["switch_to_output_ms"] for s in sessions if "switch_to_output_ms" in s.phases_ms]
    if not values:
        return None
    return {"n": len(values), "p50": float(np.median(values)), "max": float(np.max(values))}


def _per_user(shown: pd.DataFrame, outcome: CaseOutcome, users: int) -> list[dict[str, Any]]:
    rows = []
    for user in range(users):
        mine = shown[shown["user"] == user] if len(shown) else shown
        phases = {}
        for session in outcome.sessions:
            if session.user == user:
                phases = session.phases_ms
        rows.append(
            {
                "user": user,
                "n": len(mine),
                "p50": float(mine["latency_ms"].median()) if len(mine) else None,
                "fps": _rate(len(mine), outcome.window_s * outcome.repeats),
                "queue_wait_ms": phases.get("queue_wait_ms"),
                "stream_ended_ms": phases.get("stream_ended_ms"),
                "streamed_ms": _difference(phases.get("stream_ended_ms"), phases.get("queue_wait_ms")),
            }
        )
    return rows


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def _difference(end: float | None, start: float | None) -> float | None:
    return end - start if end is not None and start is not None else None


def _phase_stats(sessions: list[SessionRecord]) -> dict[str, float]:
    """Median of each set-up phase over the sessions that had it."""
    phases: dict[str, list[float]] = {}
    for session in sessions:
        for name, value in session.phases_ms.items():
            phases.setdefault(name, []).append(value)
    return {name: float(np.median(values)) for name, values in phases.items()}
