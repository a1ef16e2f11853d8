"""A user's own app measured without a scenario file: `bench run --app/--url` and `bench inspect`.

The app is read as a browser reads it (`bench.discovery`), one streaming event is
picked, and a one-target scenario is built for it, so the run, its files and its
report are those of any scenario (run.json keeps the scenario, to re-run or edit).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench.catalog import TARGET_KINDS
from bench.discovery import AppInfo, DiscoveryError, Endpoint, discover
from bench.errors import ScenarioError, UsageError
from bench.launcher import RunningTarget, app_command, launch
from bench.scenario import Scenario, describe_validation_error

# seconds per case by what the app is fed: voice needs several utterances (one each 2.5 s + its length)
DEFAULT_DURATION_S = {"video": 10.0, "audio": 10.0, "speech": 25.0, "generated": 10.0}
WARMUP_S = 2.0


def check_app_path(app: Path) -> Path:
    script = app.expanduser().resolve()
    if not script.is_file():
        raise UsageError(f"--app {app}: no such file (give the Python script that starts the app)")
    return script


@contextlib.contextmanager
def reachable_app(app: Path | None, url: str | None, log_dir: Path | None = None) -> Iterator[str]:
    """The URL of the app: `url` as given, or the app script started on loopback for as long as needed."""
    if (app is None) == (url is None):
        raise UsageError("give one of --app (a script to start) or --url (an app already running)")
    if url is not None:
        yield url.rstrip("/")
        return
    script = check_app_path(app)
    with contextlib.ExitStack() as stack:
        folder = log_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="streambench-inspect-")))
        yield stack.enter_context(launch(app_command(script), folder / f"{script.stem}-inspect.log")).url


def inspect_app(app: Path | None = None, url: str | None = None, log_dir: Path | None = None) -> AppInfo:
    """What the app streams and how each would be driven (starting and stopping it when given as a script)."""
    with reachable_app(app, url, log_dir) as address:
        return discover(address)


def parse_inputs(pairs: list[str]) -> dict[str, Any]:
    """`--input KEY=VALUE` items as {label: value}; a number stays a number, as the page would send it."""
    inputs: dict[str, Any] = {}
    for pair in pairs:
        label, sep, value = pair.partition("=")
        if not sep or not label.strip():
            raise UsageError(f"--input {pair!r}: expected LABEL=VALUE, e.g. --input Transformation=edges")
        inputs[label.strip()] = _number_or_text(value)
    return inputs


def app_scenario(
    endpoint: Endpoint,
    *,
    app: Path | None = None,
    url: str | None = None,
    kind: str | None = None,
    duration_s: float | None = None,
    users: int = 1,
    inputs: dict[str, Any] | None = None,
) -> Scenario:
    """One target for the chosen endpoint; `kind` drives it as another kind (e.g. an audio handler as an echo)."""
    kind = kind or endpoint.kind
    if kind not in TARGET_KINDS:
        raise UsageError(f"--kind {kind!r}: unknown target kind (allowed: {', '.join(TARGET_KINDS)})")
    target_kind = TARGET_KINDS[kind]
    unknown = sorted(set(inputs or {}) - set(endpoint.labels))
    if unknown:
        has = ", ".join(endpoint.labels) or "none"
        raise UsageError(f"--input {unknown[0]}: {endpoint.name} has no input labelled so (its inputs: {has})")
    target: dict[str, Any] = {"name": _target_name(app, url), "kind": kind, "users": users, **endpoint.settings}
    if endpoint.client in target_kind.allowed_clients:
        target["client"] = endpoint.client
    if inputs:
        target["inputs"] = inputs
    target["app" if app is not None else "url"] = str(check_app_path(app)) if app is not None else url
    duration = duration_s or DEFAULT_DURATION_S[target_kind.source]
    where = app.name if app is not None else url
    data = {
        "name": _slug(target["name"]),
        "description": f"{endpoint.what} of {where}, found by streambench (bench inspect lists what else it has)",
        "duration_s": duration,
        "warmup_s": min(WARMUP_S, duration / 4),
        "targets": [target],
    }
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"the scenario built for {where}: {describe_validation_error(exc)}") from exc


@dataclass(frozen=True)
class OwnAppPlan:
    """What `bench run --app/--url` will measure, and the scenario that measures it."""

    info: AppInfo
    endpoint: Endpoint
    scenario: Scenario
    scenario_path: Path  # the script (its folder resolves nothing else), or the working directory for --url
    started: dict[str, RunningTarget] = field(default_factory=dict)  # the app, still running: for run_scenario


def plan_own_app(
    app: Path | None = None,
    url: str | None = None,
    *,
    api_name: str | None = None,
    kind: str | None = None,
    duration_s: float | None = None,
    users: int = 1,
    inputs: dict[str, Any] | None = None,
    log_dir: Path | None = None,
) -> OwnAppPlan:
    """Read the app (starting a script and leaving it running for the run's case), pick the event, build its
    scenario. Pass `plan.started` to `run_scenario`, which stops the app after its case."""
    if (app is None) == (url is None):
        raise UsageError("give one of --app (a script to start) or --url (an app already running)")
    started: dict[str, RunningTarget] = {}
    if app is not None:
        script = check_app_path(app)
        folder = log_dir or Path(tempfile.mkdtemp(prefix="streambench-app-"))
        running = launch(app_command(script), folder / f"{script.stem}.log")
        started[_target_name(app, url)] = running
    try:
        info = discover(running.url if app is not None else str(url))
        endpoint = choose_endpoint(info, api_name, kind)
        scenario = app_scenario(
            endpoint, app=app, url=url, kind=kind, duration_s=duration_s, users=users, inputs=inputs
        )
    except BaseException:
        for target in started.values():
            target.stop()
        raise
    return OwnAppPlan(info, endpoint, scenario, check_app_path(app) if app is not None else Path.cwd(), started)


def choose_endpoint(info: AppInfo, api_name: str | None, kind: str | None) -> Endpoint:
    """The event to measure: by --api-name, else the first one of --kind's family, else the first one."""
    if kind is not None:
        with contextlib.suppress(DiscoveryError):
            return info.choose(api_name, kind)
    return info.choose(api_name)


def _target_name(app: Path | None, url: str | None) -> str:
    return app.stem if app is not None else "app"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "app"


def _number_or_text(value: str) -> Any:
    for cast in (int, float):
        with contextlib.suppress(ValueError):
            return cast(value)
    return value
