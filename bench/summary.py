"""Per-case summary: the `summary.json` contract (DESIGN.md) is produced here and only here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench import experience, grading
from bench.catalog import TARGET_KINDS
from bench.fidelity_store import fidelity_note
from bench.measure import ProcessLoad
from bench.network.profiles import parse_network
from bench.network.relay import PathStats, merge_paths
from bench.records import SessionRecord
from bench.stats import MIN_FRAMES, growth_slope, latency_stats

RELAY_LATE_MS = 5.0  # the relay's own lateness beyond which its impairment is not the one the profile asks


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
    client_loads: list[ProcessLoad] = field(default_factory=list)  # per client process and repeat
    app_settings: dict[str, Any] = field(default_factory=dict)
    client_errors: list[str] = field(default_factory=list)
    tick_lag_ms: list[float] = field(default_factory=list)
    client_warnings: list[str] = field(default_factory=list)
    harness_notes: list[str] = field(default_factory=list)  # what streambench changed inside the app it started
    network_stats: list[PathStats] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # each repeat's ClientResult.metrics
    latency_method: str = "marker"  # "change": samples are scene switches (the app's outputs lost the marker)
    scene_outputs: int = 0  # with "change": outputs that arrived in the measured windows (the output rate)
    compared_outputs: int = 0  # a user's app's outputs compared with the frame sent...
    unchanged_outputs: int = 0  # ...and how many were that frame within codec noise


def summarize_case(outcome: CaseOutcome) -> dict[str, Any]:
    frame = outcome.samples
    measured = frame[~frame["warmup"]] if len(frame) else frame
    shown = measured[measured["status"] == "ok"] if len(measured) else measured
    sent = int((measured["status"] != "skipped").sum()) if len(measured) else 0
    lost = int((measured["status"] == "lost").sum()) if len(measured) else 0
    users = int(outcome.settings.get("users") or 1)
    latency = latency_stats(shown["latency_ms"].to_numpy(), shown["repeat"].to_numpy()) if len(shown) else None
    timed = measured.dropna(subset=["event_latency_ms"]) if len(measured) else measured
    event = latency_stats(timed["event_latency_ms"].to_numpy(), timed["repeat"].to_numpy()) if len(timed) else None
    # a slope through a handful of samples (six voice turns) is noise, not a backlog
    slope = growth_slope(shown["capture_s"], shown["latency_ms"]) if len(shown) >= grading.SLOPE_MIN_SAMPLES else None
    rejected = sum(1 for s in outcome.sessions if s.status == "rejected")
    failed = sum(1 for s in outcome.sessions if s.status == "failed")
    cpu = max((load.cpu_percent for load in outcome.client_loads), default=None)
    bound = grading.client_bound_reasons(outcome.client_loads)
    by_change = outcome.latency_method == "change"
    output_problems = grading.orientation_problems(outcome, shown) + grading.unchanged_problems(outcome)
    # switches a second apart are no output stream: freezes need every output's arrival
    frozen_s, freezes = (None, None) if by_change else experience.freezes(outcome, measured, users)
    status, reasons = grading.grade(outcome, latency.n if latency else 0, lost, sent, slope, bound, output_problems)
    summary: dict[str, Any] = {
        "case": outcome.case_id,
        "target": outcome.target,
        "kind": outcome.kind,
        "transform": outcome.transform,
        "params": outcome.params,
        "settings": outcome.app_settings | {k: v for k, v in outcome.settings.items() if v is not None},
        "status": status,
        "status_reasons": reasons,
        "n": latency.n if latency else 0,
        "sent": sent,
        "lost": lost,
        "lost_ratio": lost / sent if sent else 0.0,
        "frozen_s": frozen_s,
        "freezes": freezes,
        "received_resolution": experience.received_resolution(outcome.sessions),
        "received_kbps": experience.received_kbps(outcome.sessions),
        "fps": _rate(outcome.scene_outputs if by_change else len(shown), outcome.window_s * users * outcome.repeats),
        "latency_method": outcome.latency_method,
        "outputs_compared": outcome.compared_outputs,
        "outputs_unchanged": outcome.unchanged_outputs,
        "errors": len(outcome.errors) + len(outcome.client_errors),
        "rejected": rejected,
        "failed_sessions": failed,
        "undecoded": outcome.undecoded,
        "orientations": outcome.orientations,
        "latency_ms": latency.to_dict() if latency else None,
        "event_latency_ms": event.to_dict() if event else None,
        "event_censored": int(timed["event_censored"].sum()) if "event_censored" in timed else 0,
        "growth_ms_per_s": slope,
        "backlog": grading.is_backlog(slope, outcome.window_s),
        "setup_ms": _phase_stats(outcome.sessions),
        "switch_to_output_ms": _switch_stats(outcome.sessions),
        "per_user": _per_user(shown, outcome, users) if users > 1 else [],
        "per_repeat": _per_repeat(shown) if outcome.repeats > 1 else [],
        "sessions": [
            {"user": s.user, "status": s.status, "error": s.error, "phases_ms": s.phases_ms} for s in outcome.sessions
        ],
        "repeats": outcome.repeats,
        "client_cpu_percent": cpu,
        "client_bound": bool(bound),
        "client_bound_reasons": bound,
        "client_core_s_per_client_s": _core_s_per_client_s(outcome.client_loads),
        "client_loop_lag_ms": _lag_stats([lag for load in outcome.client_loads for lag in load.loop_lag_ms]),
        "client_processes": [_process(load) for load in outcome.client_loads],
        "client_lag_ms": _lag_stats(outcome.tick_lag_ms),
        "network": _network(outcome),
        "stream_metrics": stream_metrics(outcome.metrics),
        "stages_ms": {
            column.removeprefix("stage_"): _quantiles(shown[column].dropna().tolist())
            for column in sorted(shown.columns)
            if column.startswith("stage_") and shown[column].notna().any()
        },
        "warnings": _warnings(outcome, latency.n if latency else 0, slope, bound, output_problems),
        "notes": _notes(outcome, lost, sent),
    }
    errors = outcome.client_errors + outcome.errors
    if errors:
        summary["error"] = errors[0]
    return summary


def stream_metrics(per_repeat: list[dict[str, Any]]) -> dict[str, Any]:
    """A client's own measurements pooled over repeats: raw lists as quantiles (exact, not averaged), counts summed."""
    pooled: dict[str, Any] = {}
    for metrics in per_repeat:
        for name, value in metrics.items():
            if isinstance(value, list):
                pooled.setdefault(name, []).extend(value)
            else:
                pooled[name] = pooled.get(name, 0) + value
    return {name: _quantiles(value) if isinstance(value, list) else value for name, value in sorted(pooled.items())}


def _quantiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    array = np.asarray(values, dtype=float)
    p50, p95 = np.percentile(array, [50, 95])
    return {"n": len(array), "p50": float(p50), "p95": float(p95), "max": float(array.max())}


def _notes(outcome: CaseOutcome, lost: int, sent: int) -> list[str]:
    """Known behaviour of the framework under test that explains this case's numbers (BENCHMARKS.md, Findings).

    Only what this run measured or set is stated as a number; what was measured elsewhere is cited, not copied,
    except the last `bench fidelity` of this kind, whose ratios are stated with its date and machine.
    """
    notes = [f"streambench changed the app it started: {note}" for note in dict.fromkeys(outcome.harness_notes)]
    if outcome.latency_method == "change":
        notes.append(
            "latency measured by change detection, because the app's outputs carry no readable frame marker: one "
            f"sample per camera scene switch, about one a second ({sent} here, where markers give one per frame), "
            "timed from the capture of the new scene's first frame to the first output that changed to it; like "
            "event_latency_ms it includes the wait for the next capture tick"
        )
    if outcome.kind in ("fastrtc-webrtc", "aiortc-echo"):
        notes.append(
            "the server's aiortc receiver releases a frame only when the next one arrives, so content latency "
            "includes up to one frame interval of this run's camera (BENCHMARKS.md, finding 1); a browser "
            "receiver, like our client, releases it on its last packet"
        )
    if outcome.kind == "gradio-stream" and lost:
        notes.append(
            f"{lost} of {sent} sent frames ({lost / sent:.0%}) were never shown: a .stream() server keeps only the "
            "newest unprocessed frame, so frames are dropped, not queued"
        )
    if outcome.kind == "gradio-stream":
        notes.append(
            "measured by a client that does what Gradio's frontend does; a real Chromium adds its own JS and image "
            "decoding to each output, so this is a lower bound for a browser user (BENCHMARKS.md, finding 8; "
            "`bench fidelity` measures the gap on your machine)"
        )
        if int(outcome.settings.get("users") or 1) > int(outcome.settings.get("concurrency_limit") or 1):
            notes.append(
                "more users than concurrency slots: in a real browser, a user who clicks Stop but keeps the tab open "
                "holds the slot up to 30 s longer (BENCHMARKS.md, finding 7); our client leaves like a closed tab"
            )
    if outcome.kind == "gradio-stream" and outcome.settings.get("network"):
        notes.append(
            "each frame crosses the network four times on its critical path (frame up the websocket, the SSE "
            "message down, the output's GET up and its bytes down): two round trips, where WebRTC media pays one "
            "(BENCHMARKS.md, finding 9)"
        )
    notes += _stream_notes(outcome, lost, sent)
    if outcome.kind == "gradio-stream" and outcome.settings.get("time_limit"):
        notes.append(
            "time_limit is counted from when the event gets a concurrency slot, not from joining the queue "
            "(BENCHMARKS.md, finding 3; see per_user streamed_ms)"
        )
    fidelity = fidelity_note(outcome.kind, outcome.settings.get("client"))
    return [*notes, fidelity] if fidelity else notes


def _stream_notes(outcome: CaseOutcome, lost: int, sent: int) -> list[str]:
    """Notes for audio, voice and output-stream cases (BENCHMARKS.md, findings 11-15)."""
    notes = []
    metrics = stream_metrics(outcome.metrics)
    client = outcome.settings.get("client")
    if outcome.kind in ("fastrtc-audio", "aiortc-audio-echo") and client != "fastrtc-websocket":
        notes.append(
            "our audio client decodes each packet on arrival, as a browser's playout does on loopback; a stock "
            "aiortc receiver would add ~80 ms (docs/PROTOCOLS.md); the jitter a playout buffer would absorb is the "
            "stream metric audio_arrival_jitter_ms"
        )
    if outcome.kind == "fastrtc-audio" and client != "fastrtc-websocket":
        notes.append(
            "FastRTC re-times its audio output after a gap over 200 ms and then never catches up: a server stall "
            "that lands while it waits for a frame stays in every later marker's latency, a step in the latency "
            "over time (BENCHMARKS.md, finding 11)"
        )
    if client == "fastrtc-websocket":
        notes.append(
            "fastrtc's WebSocket emit loop sleeps 20 ms after each item it sends, so the 20 ms chunks sent here fall "
            "behind by the extra time per chunk (BENCHMARKS.md, finding 12; see growth_ms_per_s)"
        )
    if outcome.kind == "gradio-hls":
        stalled = metrics.get("stalled_s[hls.js default]")
        rebuffers = metrics.get("rebuffers[hls.js default]")
        this_run = f" (this run: {rebuffers} rebuffers, {stalled:.1f} s stalled)" if stalled is not None else ""
        notes.append(
            "hls.js as Gradio configures it starts at the first segment and reloads the playlist twice at start, "
            f"so it stalls at the start of every stream{this_run} (BENCHMARKS.md, finding 13)"
        )
    if outcome.kind == "fastrtc-voice":
        premature = metrics.get("premature_pauses") or 0
        chunk = outcome.settings.get("audio_chunk_duration") or 0.6
        notes.append(
            f"voice-to-voice is mostly ReplyOnPause's wait for a pause, taken on its {chunk:g} s chunk grid"
            + (
                f"; the VAD heard a pause inside an utterance {premature} times and answered the fragment"
                if premature
                else ""
            )
            + " (BENCHMARKS.md, finding 14)"
        )
    if outcome.kind == "gradio-generator" and client != "gradio-client":
        notes.append(
            "Gradio's SSE loop sleeps 50 ms whenever its queue is empty, so items reach the browser on a ~50 ms grid "
            "(BENCHMARKS.md, finding 15)"
        )
    if outcome.kind == "gradio-mic" and lost:
        notes.append(
            f"{lost} of {sent} markers sent ({lost / sent:.0%}) never reached the transcript: a .stream() server "
            "keeps only the newest unprocessed chunk, so audio is dropped when the app is slower than stream_every"
        )
    return notes


def _warnings(
    outcome: CaseOutcome, n: int, slope: float | None, client_bound: list[str], output_problems: list[str]
) -> list[str]:
    warnings = list(dict.fromkeys(outcome.client_warnings))
    late = [ms for path in outcome.network_stats for way in (path.up, path.down) for ms in way.lateness_ms]
    if late and np.percentile(late, 95) > RELAY_LATE_MS:
        warnings.append(
            f"the network relay delivered 5 % of packets more than {np.percentile(late, 95):.0f} ms later than "
            "scheduled: the impairment added more than the profile asks (a busy harness?)"
        )
    if 0 < n < MIN_FRAMES:
        noun = TARGET_KINDS[outcome.kind].samples_noun if outcome.kind in TARGET_KINDS else "frames"
        noun = "scene switches" if outcome.latency_method == "change" else noun
        warnings.append(f"only {n} {noun} measured: percentiles and their intervals are rough (run longer)")
    if grading.is_backlog(slope, outcome.window_s):
        warnings.append(
            f"backlog: latency grows {slope:.0f} ms per s ({slope * outcome.window_s:.0f} ms over the run); "
            "outputs fall behind their source (a target that cannot keep up, or a player that stalls), "
            "so percentiles depend on run length"
        )
    warnings += output_problems
    if client_bound:
        warnings.append(
            "client-bound: the load generator, not the app, was saturated, so this latency is streambench's limit, "
            f"not the app's ({'; '.join(client_bound)}); spread the users over more client processes (--workers)"
        )
    return warnings


def _core_s_per_client_s(loads: list[ProcessLoad]) -> float | None:
    """CPU the client side spent per second of one user's session: the load generator's density."""
    user_s = sum(load.users * load.wall_s for load in loads)
    return sum(load.cpu_s for load in loads) / user_s if user_s else None


def _process(load: ProcessLoad) -> dict[str, Any]:
    """One client process: its users, CPU, event-loop lag, and resident memory over the run."""
    after_first_minute = [mb for t, mb in load.rss_mb if t >= 60]
    return {
        "host": load.host,
        "pid": load.pid,
        "users": load.users,
        "cpu_percent": round(load.cpu_percent, 1),
        "loop_lag_ms": _lag_stats(load.loop_lag_ms),
        "rss_mb": {
            "start": load.rss_mb[0][1] if load.rss_mb else None,
            "after_1min": after_first_minute[0] if after_first_minute else None,
            "end": load.rss_mb[-1][1] if load.rss_mb else None,
            "max": max((mb for _, mb in load.rss_mb), default=None),
        },
        "rss_trace_mb": [[round(t, 1), round(mb, 1)] for t, mb in load.rss_mb],
        "started_epoch": load.started_epoch,
    }


def _network(outcome: CaseOutcome) -> dict[str, Any] | None:
    """The profile the case ran behind and what its relays did, their own lateness included."""
    spec = outcome.settings.get("network")
    if spec is None:
        return None
    profile = parse_network(spec)
    return {"profile": profile.name, "source": profile.source, **merge_paths(outcome.network_stats).to_dict()}


def _lag_stats(lags: list[float]) -> dict[str, float] | None:
    """How late the client's capture timer fired: a busy harness shows here before it distorts latency."""
    if not lags:
        return None
    values = np.asarray(lags, dtype=float)
    return {"p50": float(np.median(values)), "p95": float(np.percentile(values, 95)), "max": float(values.max())}


def _per_repeat(shown: pd.DataFrame) -> list[dict[str, Any]]:
    """Each launch's own p50 / p95: the run-to-run spread behind the interval."""
    return [
        {
            "repeat": int(repeat),
            "n": len(group),
            "p50": float(np.percentile(group["latency_ms"], 50)),
            "p95": float(np.percentile(group["latency_ms"], 95)),
        }
        for repeat, group in shown.groupby("repeat")
    ]


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
