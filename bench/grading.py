"""A case's grade - ok, degraded, partial or failed - and every reason for it, in plain words.

The thresholds are the product's definition of "this number can be trusted as the app's"; DESIGN.md,
"Run directory", says what each grade means; `check` and `validate` refuse to pass on anything but `ok`.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bench.catalog import TARGET_KINDS

if TYPE_CHECKING:
    from bench.measure import ProcessLoad
    from bench.summary import CaseOutcome

EXPECTED_ORIENTATION = {"flip": "flip_ud"}
BACKLOG_SLOPE_MS_PER_S = 10.0
BACKLOG_MIN_RISE_MS = 100.0
SLOPE_MIN_SAMPLES = 20  # fewer samples give no growth figure at all
LOST_RATIO_DEGRADED = 0.05  # loopback loses nothing; a server dropping more than 1 frame in 20 is worth saying
CLIENT_BOUND_CPU_PERCENT = 80.0  # a client process near one full core: its own lag enters the numbers
# a client process whose event loop wakes this late (p95) sends and timestamps late: see BENCHMARKS.md, "Load"
CLIENT_BOUND_LOOP_LAG_MS = 20.0
UNCHANGED_FRACTION = 0.9  # a user's app returning this share of its inputs unchanged did not transform them
MIN_COMPARED = 3  # fewer compared outputs say nothing about the app


def grade(
    outcome: CaseOutcome,
    n: int,
    lost: int,
    sent: int,
    slope: float | None,
    client_bound: list[str],
    output_problems: list[str],
) -> tuple[str, list[str]]:
    """failed < partial < degraded < ok, with every reason in plain words (DESIGN.md, case status)."""
    sessions = outcome.sessions
    if n == 0 and not (unstamped_items(outcome) and not outcome.client_errors + outcome.errors):
        silent = (
            "the outputs carry no readable frame marker and none followed the camera's scene switches"
            if outcome.latency_method == "change"
            else "no output came back"
        )
        first = (outcome.client_errors + outcome.errors or [silent])[0]
        return "failed", [f"no {_noun(outcome)} were measured: {first}"]
    partial = [f"streambench client error (a harness bug, not the target's): {e}" for e in outcome.client_errors]
    failed = [s for s in sessions if s.status == "failed"]
    if failed:
        partial.append(f"{len(failed)} of {len(sessions)} sessions failed: {failed[0].error}")
    partial += [e for e in outcome.errors if not any(s.error and s.error in e for s in failed)]
    if partial:
        return "partial", partial
    degraded = []
    if sent and lost / sent > LOST_RATIO_DEGRADED and outcome.latency_method == "change":
        degraded.append(f"{lost} of {sent} camera scene switches showed in no output before the next switch")
    elif sent and lost / sent > LOST_RATIO_DEGRADED:
        degraded.append(f"{lost / sent:.0%} of sent {_noun(outcome)} ({lost} of {sent}) never came back")
    if is_backlog(slope, outcome.window_s):
        degraded.append(f"backlog: latency grows {slope:.0f} ms per s, outputs fall further behind their capture")
    rejected = [s for s in sessions if s.status == "rejected"]
    if rejected:
        degraded.append(f"{len(rejected)} of {len(sessions)} sessions were rejected ({rejected[0].error})")
    degraded += [f"client-bound: {reason}" for reason in client_bound]
    degraded += output_problems
    return ("degraded", degraded) if degraded else ("ok", [])


def client_bound_reasons(loads: list[ProcessLoad]) -> list[str]:
    """Why the load generator, not the target, may have set the pace: a client process near a full core, or an
    event loop that wakes late (its sends and receipt times are then late too)."""
    reasons = []
    for load in loads:
        where = f"client process {load.pid}" + (f" on {load.host}" if load.host != socket.gethostname() else "")
        if load.cpu_percent > CLIENT_BOUND_CPU_PERCENT:
            reasons.append(f"{where} used {load.cpu_percent:.0f} % of a core for {load.users} users")
        lag = float(np.percentile(load.loop_lag_ms, 95)) if load.loop_lag_ms else 0.0
        if lag > CLIENT_BOUND_LOOP_LAG_MS:
            reasons.append(f"{where}'s event loop woke {lag:.0f} ms late (p95) with {load.users} users")
    return list(dict.fromkeys(reasons))


def _noun(outcome: CaseOutcome) -> str:
    kind = TARGET_KINDS.get(outcome.kind)
    return kind.samples_noun if kind else "frames"


def unstamped_items(outcome: CaseOutcome) -> int:
    """Outputs of an app that stamps nothing (the guide's fake_diffusion): they arrived, so the case measured
    first-item and inter-item times, though no per-item latency."""
    return sum(int(metrics.get("unstamped_items", 0)) for metrics in outcome.metrics)


def is_backlog(slope: float | None, window_s: float) -> bool:
    return slope is not None and slope > BACKLOG_SLOPE_MS_PER_S and slope * window_s > BACKLOG_MIN_RISE_MS


def unchanged_problems(outcome: CaseOutcome) -> list[str]:
    """A user's app that returns the frames it was sent: its handler never ran (a FastRTC handler on FastAPI waits
    for `set_input`, docs/PROTOCOLS.md), or it is an identity. Not said when the case asked that app for one."""
    users_app = outcome.settings.get("url") or outcome.settings.get("app")
    asked_identity = outcome.app_settings.get("transform_input") and outcome.transform in ("identity", "delay")
    compared, same = outcome.compared_outputs, outcome.unchanged_outputs
    if not users_app or asked_identity or compared < MIN_COMPARED or same < UNCHANGED_FRACTION * compared:
        return []
    return [
        f"the app returned its input unchanged ({same} of {compared} outputs compared): its handler did not run, "
        "or it is an identity"
    ]


def orientation_problems(outcome: CaseOutcome, shown: pd.DataFrame) -> list[str]:
    """Outputs not oriented the way the transform implies: the transform did not run (inputs not set?).

    A user's app is held to the case's transform only when the client could hand it over (an input
    named `transform`, or a POST /input_hook route); otherwise its own default transform is unknown here.

    With `switch_transform`, outputs of frames sent before the switch must show the first transform and
    outputs of frames captured after it the second; frames in between may show either.
    """
    if "orientation" not in shown or not shown["orientation"].notna().any():
        return []
    users_app = outcome.settings.get("url") or outcome.settings.get("app")
    if users_app and not outcome.app_settings.get("transform_input"):
        return []  # the case's transform never reached the app: nothing to expect of its outputs
    phases = [(outcome.transform, shown)]
    switch_at = outcome.settings.get("switch_at_s")
    switch_to = outcome.settings.get("switch_transform")
    if switch_at is not None and switch_to:
        before = shown[shown["send_s"] < switch_at] if "send_s" in shown else shown.iloc[0:0]
        phases = [(outcome.transform, before), (switch_to, shown[shown["capture_s"] >= switch_at])]
    problems = []
    for transform, outputs in phases:
        seen = outputs["orientation"].dropna()
        if not len(seen):
            continue
        expected = EXPECTED_ORIENTATION.get(transform, "identity")
        common = seen.value_counts().idxmax()
        if common != expected:
            problems.append(
                f"outputs show orientation {common!r}, expected {expected!r} for transform {transform!r}: "
                "the transform did not run (inputs not set?)"
            )
    return problems
