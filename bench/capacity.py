"""Capacity: how many simultaneous users a target serves within the scenario's claims.

A scenario's `[load]` ramp runs every target at users_from, users_from + step, ...,
users_to users (one case per step). A step *serves* its users when

- the case is `ok` (no failed, rejected or starved session, no backlog, no loss
  beyond the grading threshold, the harness not the bottleneck),
- every claim on its target passes for that case (`bench.claims`: the whole 95 %
  interval on the right side of the bound; an inconclusive claim does not pass),
- and each user gets at least `fps_ratio_min` x the requested rate (see
  `requested_fps`), when a rate was requested at all.

The KNEE is the last step of the first passing run from the bottom: the largest
user count below the first failing step. A step that passes again after a
failing one does not raise the knee (a noisy pass above a failure is no capacity
a deployer can rely on); it is reported as such. No passing first step: no knee,
with the first step's reasons. Computes only; `bench.report.capacity` renders.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.catalog import TARGET_KINDS
from bench.claims import ClaimVerdict, evaluate_claims
from bench.store import RunData

SCHEMA_VERSION = 1
CAPACITY = "capacity.json"
FPS_RATIO_MIN = 0.9  # the [load] default
KNEE_RULE = (
    "knee = the largest user count of the first run of passing steps from the bottom; a step passes when its case "
    "is ok, every claim on its target passes, and each user gets >= fps_ratio_min x the requested fps. A step that "
    "passes again after a failing step does not raise the knee."
)
FRAME_RATE_CLIENTS = ("gradio-stream", "chromium")  # clients that send a video frame per stream_every tick


@dataclass(frozen=True)
class Step:
    """One step of the ramp for one series: what a deployer reads off its row."""

    users: int
    case: str
    status: str
    passed: bool
    failures: list[str]  # why the step does not serve its users, in full (empty when it passes)
    failed_checks: list[str] = field(default_factory=list)  # the same, one short tag each (for table cells)
    n: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p95_ci_ms: tuple[float, float] | None = None
    fps: float | None = None
    requested_fps: float | None = None
    lost_ratio: float | None = None
    rejected: int = 0
    failed_sessions: int = 0
    queue_wait_ms: float | None = None  # median over the users' sessions (Gradio's queue), when reported
    queue_wait_max_ms: float | None = None  # the longest any user waited
    client_bound: bool = False


@dataclass(frozen=True)
class SeriesCapacity:
    """A target's ramp with everything else held fixed (a target sweeping another list value has several)."""

    label: str
    target: str
    kind: str
    steps: list[Step]
    knee: int | None
    reason: str  # why the knee is where it is, or why there is none
    recovered: list[int] = field(default_factory=list)  # steps that passed again above a failure: not counted
    latency_bounds: list[tuple[str, str, float]] = field(default_factory=list)  # (metric, op, value) to plot


@dataclass(frozen=True)
class Capacity:
    scenario: str
    run_id: str
    users: list[int]
    fps_ratio_min: float
    series: list[SeriesCapacity]
    complete: bool  # every step of the ramp finished (False after Ctrl-C)
    rule: str = KNEE_RULE

    @property
    def all_have_knee(self) -> bool:
        return bool(self.series) and all(s.knee is not None for s in self.series)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **asdict(self)}


def find_knee(passed: list[bool], users: list[int]) -> tuple[int | None, int | None, list[int]]:
    """(knee, first failing users, users of steps passing again above it), steps in ascending users."""
    first_fail = next((i for i, ok in enumerate(passed) if not ok), None)
    if first_fail is None:
        return (users[-1] if users else None), None, []
    knee = users[first_fail - 1] if first_fail > 0 else None
    recovered = [u for u, ok in zip(users[first_fail:], passed[first_fail:], strict=True) if ok]
    return knee, users[first_fail], recovered


def requested_fps(case: dict[str, Any]) -> float | None:
    """The output rate a user asks for: the camera's fps, or for a `.stream()` webcam the browser's capture tick
    (1 / stream_every) when that is slower, since one output per sent frame is all such an app can give; an
    audio kind's marker rate. None where the app sets its own pace (generators, HLS, voice turns)."""
    settings = case.get("settings") or {}
    kind = TARGET_KINDS.get(case.get("kind", ""))
    rate = settings.get("fps")
    if kind is None or kind.source not in ("video", "audio") or not rate:
        return None
    rate = float(rate)
    client = settings.get("client") or kind.client
    every = settings.get("stream_every")
    if kind.source == "video" and client in FRAME_RATE_CLIENTS and every:
        rate = min(rate, 1 / float(every))
    return rate


def step_of(case: dict[str, Any], verdicts: list[ClaimVerdict], fps_ratio_min: float) -> Step:
    """One case as a step: its numbers, and every reason it does not serve its users."""
    latency = case.get("latency_ms") or {}
    failures, failed_checks = [], []
    ok = case.get("status") == "ok"
    if not ok:
        why = "; ".join(case.get("status_reasons") or []) or case.get("error") or "no reason recorded"
        failures.append(f"case {case.get('status')}: {why}")
        failed_checks.append(f"case {case.get('status')}")
    for verdict in verdicts:
        if verdict.status == "pass":
            continue
        measured = "" if verdict.value is None else f", measured {verdict.value:.1f}"
        if verdict.ci is not None:
            measured += f" [{verdict.ci[0]:.1f}, {verdict.ci[1]:.1f}]"
        if not ok and verdict.reason.startswith("the case is"):
            why = f" (a {case.get('status')} case supports no claim)"
        elif verdict.status == "inconclusive":
            why = " (the interval straddles the bound: hold longer)"
        else:
            why = f" ({verdict.reason})" if verdict.reason else ""
        failures.append(f"claim {verdict.claim}: {verdict.status}{measured}{why}")
        failed_checks.append(f"claim {verdict.claim.split(' (')[0]}")
    requested = requested_fps(case)
    fps = case.get("fps")
    if requested and fps_ratio_min > 0 and fps is not None and fps < fps_ratio_min * requested:
        failures.append(
            f"fps {fps:.1f} < {fps_ratio_min:g} x requested {requested:g} (each user got {fps / requested:.0%})"
        )
        failed_checks.append(f"fps {fps / requested:.0%} of requested")
    waits = [
        s["phases_ms"]["queue_wait_ms"] for s in case.get("sessions") or [] if "queue_wait_ms" in s.get("phases_ms", {})
    ]
    ci = latency.get("p95_ci")
    return Step(
        users=int((case.get("settings") or {}).get("users") or 1),
        case=case["case"],
        status=case.get("status", "failed"),
        passed=not failures,
        failures=failures,
        failed_checks=failed_checks,
        n=int(case.get("n") or 0),
        p50_ms=latency.get("p50"),
        p95_ms=latency.get("p95"),
        p95_ci_ms=(float(ci[0]), float(ci[1])) if ci else None,
        fps=fps,
        requested_fps=requested,
        lost_ratio=case.get("lost_ratio"),
        rejected=int(case.get("rejected") or 0),
        failed_sessions=int(case.get("failed_sessions") or 0),
        queue_wait_ms=(case.get("setup_ms") or {}).get("queue_wait_ms"),
        queue_wait_max_ms=max(waits, default=None),
        client_bound=bool(case.get("client_bound")),
    )


def series_capacity(
    label: str,
    target: str,
    kind: str,
    steps: list[Step],
    planned: list[int] | None = None,
    bounds: list[tuple[str, str, float]] | None = None,
) -> SeriesCapacity:
    """The knee of one series and, in words, why it sits there."""
    steps = sorted(steps, key=lambda s: s.users)
    knee, failing, recovered = find_knee([s.passed for s in steps], [s.users for s in steps])
    unfinished = [u for u in planned or [] if u not in {s.users for s in steps}]
    if not steps:
        reason = "no step finished"
    elif failing is None:
        reason = f"every step up to {knee} users passed: the capacity is at least {knee} users"
        reason += (
            f" (the ramp stopped before {unfinished[0]} users)" if unfinished else " (raise users_to to find the limit)"
        )
    else:
        first = next(s for s in steps if s.users == failing)
        why = "; ".join(first.failures)
        reason = (
            f"fails from {failing} users: {why}"
            if knee is not None
            else f"no knee: the first step ({failing} users) already fails: {why}"
        )
        if recovered:
            reason += (
                f"; passes again at {', '.join(map(str, recovered))} users, which does not raise the knee (the knee "
                "is the last step of the first passing run from the bottom)"
            )
    return SeriesCapacity(label, target, kind, steps, knee, reason, recovered, bounds or [])


def capacity_of_run(run: RunData, verdicts: list[ClaimVerdict] | None = None) -> Capacity:
    """Per series (target and the values it holds fixed), the steps of the ramp and their knee."""
    scenario = run.run.get("scenario") or {}
    load = scenario.get("load") or {}
    ratio = float(load.get("fps_ratio_min", FPS_RATIO_MIN))
    planned = list(range(load["users_from"], load["users_to"] + 1, load.get("step", 1))) if load else []
    verdicts = evaluate_claims(run) if verdicts is None else verdicts
    by_case: dict[str, list[ClaimVerdict]] = {}
    for verdict in verdicts:
        by_case.setdefault(verdict.case, []).append(verdict)
    groups: dict[str, list[dict[str, Any]]] = {}
    for case in run.summary.get("cases", []):
        groups.setdefault(_series_label(case), []).append(case)
    claims = scenario.get("claims") or []
    series = []
    for label, cases in groups.items():
        target = cases[0]["target"]
        steps = [step_of(c, by_case.get(c["case"], []), ratio) for c in cases]
        bounds = [
            (c["metric"], c["op"], float(c["value"]))
            for c in claims
            if c["target"] == target and c.get("value") is not None and c["metric"].startswith("latency_ms.")
        ]
        series.append(series_capacity(label, target, cases[0].get("kind", ""), steps, planned, bounds))
    finished = {s.users for one in series for s in one.steps}
    complete = run.run.get("status") not in ("interrupted", "running") and set(planned) <= finished
    return Capacity(scenario.get("name", ""), run.run_id, planned, ratio, series, complete)


def _series_label(case: dict[str, Any]) -> str:
    """The case id without its users: target/transform[/other swept values]."""
    params = {k: v for k, v in (case.get("params") or {}).items() if k != "users"}
    tail = ",".join(f"{k}={_fmt(v)}" for k, v in params.items())
    return "/".join(p for p in (case["target"], case.get("transform", ""), tail) if p)


def _fmt(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
