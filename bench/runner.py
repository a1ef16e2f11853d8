"""Run a scenario: for each case, launch -> drive clients -> collect -> persist.

Repeats are interleaved (every case once, then every case again) so slow drift
of a noisy machine spreads over all cases instead of biasing the last ones.
After every case the run directory is rewritten atomically: an interrupted run
keeps what it finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from bench import store
from bench.catalog import TARGET_KINDS, TargetKind, client_for
from bench.clients.base import ClientConfig
from bench.errors import TargetError
from bench.launcher import NOTE_PREFIX, RunningTarget, TargetCommand, app_command, injected_notes, launch
from bench.media.camera import VirtualCamera
from bench.media.scene_change import first_changes
from bench.metadata import collect_environment
from bench.network.impaired import impaired_url
from bench.network.profiles import parse_network
from bench.preflight import check_reachable
from bench.records import ClientResult, Sample, build_samples
from bench.scenario import Case, Scenario, expand_cases
from bench.summary import CaseOutcome, summarize_case
from bench.workers import WorkerSpec

GRACE_S = 1.0
SCHEMA_VERSION = 2  # 2: case status_reasons, degraded grade, batch-means CIs (ci_method), per_repeat, event_censored
STATUS_ORDER = ("ok", "degraded", "partial", "failed")  # better to worse; a run is as bad as its worst case
SCENE_KINDS = ("gradio-stream", "fastrtc-webrtc")  # a user's app of these kinds gets the scene camera
# 29 frames at 30 fps: longer than most apps' latency, and not a multiple of the usual stream_every values, so
# successive switches fall at spread phases of a .stream() client's capture timer
SCENE_PERIOD_S = 0.97
MIN_DECODED_FRACTION = 0.1  # fewer outputs than this with a readable marker: latency by change detection


class RunObserver(Protocol):
    def case_started(self, case: Case, repeat: int, index: int, total: int, duration_s: float) -> None: ...

    def case_finished(self, case: Case, repeat: int, summary: dict[str, Any]) -> None: ...


@dataclass
class RunResult:
    path: Path
    summary: dict[str, Any]
    interrupted: bool = False

    @property
    def target_failed(self) -> bool:
        """A case lost samples to a target that failed or stalled: `bench run` exits 3."""
        return any(c["status"] in ("partial", "failed") for c in self.summary["cases"])


def worst_status(statuses: Any) -> str:
    """The worst of the case grades (ok for no case at all)."""
    return max(statuses, key=STATUS_ORDER.index, default="ok")


@dataclass
class _Attempt:
    """One repeat of one case, as measured."""

    samples: pd.DataFrame
    result: ClientResult
    client_cpu_percent: float | None
    latency_method: str = "marker"
    scene_outputs: int = 0  # with change detection: outputs that arrived in the measured window


def run_scenario(
    scenario: Scenario,
    scenario_path: Path,
    out_root: Path = Path("runs"),
    observer: RunObserver | None = None,
    already_running: dict[str, RunningTarget] | None = None,
    workers: WorkerSpec | None = None,
) -> RunResult:
    """Every case of the scenario, in order. `already_running`: targets already running for this run (by target name),
    used by their first case instead of a launch and stopped after it (`bench run --app` reads the app first)."""
    cases = expand_cases(scenario)
    run_dir = store.new_run_dir(out_root, scenario.name)
    started = datetime.now(UTC)
    run_meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_dir.name,
        "scenario": scenario.model_dump(mode="json"),
        "scenario_path": str(scenario_path),
        "cases": [c.case_id for c in cases],
        "environment": collect_environment(),
        "started": started.isoformat(),
        "ended": None,
        "status": "running",
        "errors": [],
    }
    store.atomic_write_json(run_dir / store.RUN, run_meta)
    attempts: dict[str, list[_Attempt]] = {c.case_id: [] for c in cases}
    failures: dict[str, list[str]] = {c.case_id: [] for c in cases}
    done: list[str] = []
    interrupted = False
    total = len(cases) * scenario.repeat
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        for repeat in range(scenario.repeat):
            for index, case in enumerate(cases):
                if observer:
                    observer.case_started(case, repeat, repeat * len(cases) + index, total, scenario.duration_s)
                try:
                    attempt = _run_case(scenario, case, repeat, run_dir, scenario_path.parent, already_running or {})
                    attempts[case.case_id].append(attempt)
                except TargetError as exc:
                    failures[case.case_id].append(str(exc))
                    run_meta["errors"].append(f"{case.case_id} (repeat {repeat}): {exc}")
                if case.case_id not in done:
                    done.append(case.case_id)
                summary = _write(run_dir, scenario, cases, done, attempts, failures, run_meta, "running")
                if observer:
                    observer.case_finished(case, repeat, next(c for c in summary["cases"] if c["case"] == case.case_id))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
    status = "interrupted" if interrupted else "ok"
    summary = _write(run_dir, scenario, cases, done, attempts, failures, run_meta, status)
    return RunResult(run_dir, summary, interrupted)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _command(kind: TargetKind, case: Case, scenario_dir: Path) -> TargetCommand:
    """Our bundled app for the kind, or the user's `app` script (relative to the scenario file) via bench.app_host."""
    app = case.settings.get("app")
    ready_path = case.settings.get("ready_path") or ("/" if app else kind.ready_path)
    if app:
        script = (scenario_dir / app).resolve()
        if not script.is_file():
            raise TargetError(f"app {script} not found")
        return app_command(script, ready_path)
    return TargetCommand(kind.argv(case.settings), ready_path=ready_path)


def _run_case(
    scenario: Scenario, case: Case, repeat: int, run_dir: Path, scenario_dir: Path, started: dict[str, RunningTarget]
) -> _Attempt:
    kind = TARGET_KINDS[case.kind]
    log_path = run_dir / store.LOGS / f"{case.slug}-r{repeat}.log"
    app_log = log_path
    url = case.settings.get("url")
    with contextlib.ExitStack() as stack:
        running = started.pop(case.target, None)
        if url:
            check_reachable(url)
        elif running is not None and running.alive():
            url, app_log = stack.enter_context(running).url, running.log_path
        else:
            url = stack.enter_context(launch(_command(kind, case, scenario_dir), log_path)).url
        camera = make_source(kind, scenario, case)
        config = ClientConfig(
            url=url,
            duration_s=scenario.duration_s,
            users=int(case.settings.get("users") or 1),
            transform=case.transform,
            params=dict(case.settings),
            network=parse_network(case.settings["network"]) if case.settings.get("network") else None,
        )
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        result = asyncio.run(_drive(client_for(kind, case.settings), camera, config, seed=repeat))
        cpu_percent = 100 * (time.process_time() - cpu_start) / max(time.perf_counter() - wall_start, 1e-9)
    if app_log != log_path:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(app_log, log_path)
    if not case.settings.get("url"):
        result.harness_notes += [line.removeprefix(NOTE_PREFIX) for line in injected_notes(log_path)]
    end_s = camera.started + scenario.duration_s
    if _markers_lost(result):
        frame = _samples_frame(_change_samples(result, camera, end_s), camera.started, scenario.warmup_s, case, repeat)
        outputs = sum(camera.started + scenario.warmup_s <= look.recv_s <= end_s for look in result.looks)
        return _Attempt(frame, result, cpu_percent, "change", outputs)
    captured = result.origin_times if kind.source == "generated" else camera.capture_times(end_s)
    rows = build_samples(result, captured, grace_end_s=end_s, listen_end_s=end_s + GRACE_S)
    frame = _samples_frame(rows, camera.started, scenario.warmup_s, case, repeat)
    return _Attempt(frame, result, cpu_percent)


def _markers_lost(result: ClientResult) -> bool:
    """Outputs came back (scene mode records every one) but hardly any carried a readable marker."""
    return bool(result.looks) and len(result.receipts) < MIN_DECODED_FRACTION * len(result.looks)


def _change_samples(result: ClientResult, camera: VirtualCamera, end_s: float) -> list[Sample]:
    """One row per (user, scene switch): from the capture of the new scene's first frame to the first output that
    changed to it (`bench.media.scene_change`); a switch no output was seen to follow is lost."""
    switches = camera.scene_switches(end_s)
    scenes = [(capture_s, camera.scene_of(frame_id)) for frame_id, capture_s in switches.items()]
    rows = []
    for user in sorted({look.user for look in result.looks}):
        looks = [look for look in result.looks if look.user == user]
        seen = first_changes([look.recv_s for look in looks], [look.signature for look in looks], scenes)
        for (frame_id, capture_s), recv_s in zip(switches.items(), seen, strict=True):
            latency = None if recv_s is None else (recv_s - capture_s) * 1000
            status = "lost" if recv_s is None else "ok"
            rows.append(Sample(user, frame_id, capture_s, None, recv_s, latency, latency, status))
    return rows


def make_source(kind: TargetKind, scenario: Scenario, case: Case) -> Any:
    """What the case's clients send: camera frames, marker audio or speech utterances.

    Every source has `start()`, `started` and `capture_times(until_s)`; a target that makes its own
    samples (a generator) still gets a camera, for the shapes that transform camera frames. A user's video app
    gets the camera in scene mode: should its outputs lose the marker, scene changes still give its latency.
    """
    rate = float(case.settings["fps"])
    if kind.source == "audio":
        from bench.media.microphone import VirtualMicrophone

        return VirtualMicrophone(markers_per_s=rate)
    if kind.source == "speech":
        from bench.media.microphone import SpeechMicrophone

        return SpeechMicrophone()
    users_app = case.settings.get("url") or case.settings.get("app")
    scene_period_s = SCENE_PERIOD_S if users_app and case.kind in SCENE_KINDS else None
    return VirtualCamera(scenario.source.width, scenario.source.height, rate, scene_period_s)


async def _drive(client: Any, camera: VirtualCamera, config: ClientConfig, seed: int = 0) -> ClientResult:
    """Start the camera and the client, behind the case's network relays when it has a network profile."""
    async with impaired_url(config.url, config.network, seed) as (url, relays):
        camera.start()
        result = await client.run(camera, replace(config, url=url))
        result.network_stats += [relay.stats for relay in relays]
    return result


def _samples_frame(rows: list[Any], t0: float, warmup_s: float, case: Case, repeat: int) -> pd.DataFrame:
    def rel(value: float | None) -> float | None:
        return None if value is None else value - t0

    records = []
    for row in rows:
        record = {
            "case": case.case_id,
            "target": case.target,
            "kind": case.kind,
            "transform": case.transform,
            "repeat": repeat,
            "user": row.user,
            "sample_id": row.sample_id,
            "capture_s": rel(row.capture_s),
            "send_s": rel(row.send_s),
            "recv_s": rel(row.recv_s),
            "latency_ms": row.latency_ms,
            "event_latency_ms": row.event_latency_ms,
            "event_censored": row.event_censored,
            "status": row.status,
            "orientation": row.orientation,
            "warmup": row.capture_s - t0 < warmup_s,
        }
        record.update({f"stage_{name.removesuffix('_ms')}_ms": value for name, value in row.stages_ms.items()})
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    for key, value in case.params.items():
        frame[f"param_{key}"] = value
    return frame


def _write(
    run_dir: Path,
    scenario: Scenario,
    cases: list[Case],
    done: list[str],
    attempts: dict[str, list[_Attempt]],
    failures: dict[str, list[str]],
    run_meta: dict[str, Any],
    status: str,
) -> dict[str, Any]:
    frames = [a.samples for case_id in done for a in attempts[case_id] if len(a.samples)]
    samples = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(samples):
        samples.insert(0, "run", run_dir.name)
        store.atomic_write_parquet(run_dir / store.SAMPLES, samples)
    by_id = {c.case_id: c for c in cases}
    case_summaries = [
        summarize_case(_outcome(scenario, by_id[case_id], attempts[case_id], failures[case_id], samples))
        for case_id in done
    ]
    if status == "ok":
        status = worst_status(c["status"] for c in case_summaries)
    summary = {
        "schema_version": SCHEMA_VERSION,
        "scenario": scenario.name,
        "run_id": run_dir.name,
        "status": status,
        "cases": case_summaries,
    }
    store.atomic_write_json(run_dir / store.SUMMARY, summary)
    run_meta.update(status=status, ended=datetime.now(UTC).isoformat() if status != "running" else None)
    store.atomic_write_json(run_dir / store.RUN, run_meta)
    return summary


def _outcome(
    scenario: Scenario, case: Case, attempts: list[_Attempt], failures: list[str], samples: pd.DataFrame
) -> CaseOutcome:
    orientations: Counter[str] = Counter()
    for attempt in attempts:
        orientations.update(attempt.result.orientations)
    return CaseOutcome(
        case_id=case.case_id,
        target=case.target,
        kind=case.kind,
        transform=case.transform,
        params=case.params,
        settings=case.settings,
        samples=samples[samples["case"] == case.case_id] if len(samples) else samples,
        window_s=scenario.duration_s - scenario.warmup_s,
        repeats=len(attempts),
        sessions=[s for a in attempts for s in a.result.sessions],
        errors=failures + [e for a in attempts for e in a.result.errors],
        undecoded=sum(a.result.undecoded for a in attempts),
        orientations=dict(orientations),
        client_cpu_percent=[a.client_cpu_percent for a in attempts if a.client_cpu_percent is not None],
        app_settings={k: v for a in attempts for k, v in a.result.app_settings.items()},
        client_errors=[e for a in attempts for e in a.result.client_errors],
        tick_lag_ms=[lag for a in attempts for lag in a.result.tick_lag_ms],
        client_warnings=[w for a in attempts for w in a.result.warnings],
        harness_notes=[n for a in attempts for n in a.result.harness_notes],
        network_stats=[path for a in attempts for path in a.result.network_stats],
        metrics=[a.result.metrics for a in attempts],
        latency_method="change" if any(a.latency_method == "change" for a in attempts) else "marker",
        scene_outputs=sum(a.scene_outputs for a in attempts),
        compared_outputs=sum(a.result.compared_outputs for a in attempts),
        unchanged_outputs=sum(a.result.unchanged_outputs for a in attempts),
    )
