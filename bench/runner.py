"""Run a scenario: for each case, launch -> drive clients -> collect -> persist.

Repeats are interleaved (every case once, then every case again) so slow drift
of a noisy machine spreads over all cases instead of biasing the last ones.
After every case the run directory is rewritten atomically: an interrupted run
keeps what it finished.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from bench import store
from bench.catalog import TARGET_KINDS, TargetKind
from bench.errors import TargetError
from bench.launcher import NOTE_PREFIX, RunningTarget, TargetCommand, app_command, injected_notes, launch
from bench.measure import ProcessLoad
from bench.metadata import collect_environment
from bench.preflight import check_reachable
from bench.records import ClientResult
from bench.scenario import Case, Scenario, expand_cases
from bench.summary import CaseOutcome, summarize_case
from bench.workers import ClientWorkers, WorkerSpec, client_workers, merge_results

# 2: case status_reasons, degraded grade, batch-means CIs (ci_method), per_repeat, event_censored;
# 3: client_processes (per client process: CPU, event-loop lag, memory), client_core_s_per_client_s
SCHEMA_VERSION = 3
STATUS_ORDER = ("ok", "degraded", "partial", "failed")  # better to worse; a run is as bad as its worst case


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
    loads: list[ProcessLoad]  # one per client process
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
        "client_workers": {
            "processes": (workers or WorkerSpec()).processes,
            "cluster": (workers or WorkerSpec()).cluster,
        },
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
        with client_workers(workers) as pool:
            for repeat in range(scenario.repeat):
                for index, case in enumerate(cases):
                    if observer:
                        observer.case_started(case, repeat, repeat * len(cases) + index, total, scenario.duration_s)
                    try:
                        attempt = _run_case(
                            scenario, case, repeat, run_dir, scenario_path.parent, already_running or {}, pool
                        )
                        attempts[case.case_id].append(attempt)
                    except TargetError as exc:
                        failures[case.case_id].append(str(exc))
                        run_meta["errors"].append(f"{case.case_id} (repeat {repeat}): {exc}")
                    if case.case_id not in done:
                        done.append(case.case_id)
                    summary = _write(run_dir, scenario, cases, done, attempts, failures, run_meta, "running")
                    if observer:
                        finished = next(c for c in summary["cases"] if c["case"] == case.case_id)
                        observer.case_finished(case, repeat, finished)
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
    scenario: Scenario,
    case: Case,
    repeat: int,
    run_dir: Path,
    scenario_dir: Path,
    started: dict[str, RunningTarget],
    workers: ClientWorkers,
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
        shares = workers.measure(scenario, case, url, repeat)
    if app_log != log_path:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(app_log, log_path)
    result = merge_results([share.result for share in shares])
    if not case.settings.get("url"):
        result.harness_notes += [line.removeprefix(NOTE_PREFIX) for line in injected_notes(log_path)]
    frames = [share.samples for share in shares if len(share.samples)]
    samples = pd.concat(frames, ignore_index=True) if frames else shares[0].samples
    method = "change" if any(share.latency_method == "change" for share in shares) else "marker"
    return _Attempt(samples, result, [share.load for share in shares], method, sum(s.scene_outputs for s in shares))


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
        client_loads=[load for a in attempts for load in a.loads],
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
