"""One share of a case's users, measured in the process that runs it: source, client, samples, and that process's load.

The same function runs in the harness process (the default) and in each client worker
(`bench.workers`). Every latency is computed inside the process that captured and received
the sample, against that process's own clock (perf_counter), so workers on other machines
never mix clocks; only their timelines are aligned, by the wall-clock instant each worker's
source started (`ProcessLoad.started_epoch`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from bench.catalog import TARGET_KINDS, TargetKind, client_for
from bench.clients.base import ClientConfig
from bench.media.camera import VirtualCamera
from bench.media.scene_change import first_changes
from bench.network.impaired import impaired_url
from bench.network.profiles import parse_network
from bench.records import ClientResult, Sample, samples_by_user
from bench.scenario import Case, Scenario
from bench.spool import Spool

GRACE_S = 1.0
SCENE_KINDS = ("gradio-stream", "fastrtc-webrtc")  # a user's app of these kinds gets the scene camera
# 29 frames at 30 fps: longer than most apps' latency, and not a multiple of the usual stream_every values, so
# successive switches fall at spread phases of a .stream() client's capture timer
SCENE_PERIOD_S = 0.97
MIN_DECODED_FRACTION = 0.1  # fewer outputs than this with a readable marker: latency by change detection
LAG_PROBE_S = 0.05  # the event-loop lag probe sleeps this long and records how late it woke
RSS_EVERY_S = 5.0


@dataclass(frozen=True)
class Share:
    """Users `first_user` .. `first_user + users - 1` of a case."""

    first_user: int
    users: int


@dataclass
class ProcessLoad:
    """What driving its share cost one client process: the load generator's own saturation, kept per process."""

    host: str
    pid: int
    users: int
    cpu_s: float
    wall_s: float
    loop_lag_ms: list[float] = field(default_factory=list)  # one per LAG_PROBE_S: how late the event loop woke
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (s since the share started, resident MB)
    started_epoch: float = 0.0  # time.time() when the share's source started

    @property
    def cpu_percent(self) -> float:
        return 100 * self.cpu_s / max(self.wall_s, 1e-9)


@dataclass
class Measured:
    """One share's samples (users numbered case-wide) and what its client saw besides; per-frame records dropped."""

    samples: pd.DataFrame
    result: ClientResult
    load: ProcessLoad
    latency_method: str = "marker"
    scene_outputs: int = 0  # with change detection: outputs that arrived in the measured window


def measure_share(scenario: Scenario, case: Case, url: str, share: Share, repeat: int) -> Measured:
    """Drive `share`'s users of `case` against the target at `url` for the scenario's duration."""
    kind = TARGET_KINDS[case.kind]
    source = make_source(kind, scenario, case)
    config = ClientConfig(
        url=url,
        duration_s=scenario.duration_s,
        users=share.users,
        transform=case.transform,
        params=dict(case.settings),
        network=parse_network(case.settings["network"]) if case.settings.get("network") else None,
    )
    load = ProcessLoad(socket.gethostname(), os.getpid(), share.users, 0.0, 0.0)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    result = asyncio.run(_drive_and_probe(client_for(kind, case.settings), source, config, repeat, load))
    load.cpu_s, load.wall_s = time.process_time() - cpu_start, time.perf_counter() - wall_start
    measured = _to_samples(kind, scenario, case, repeat, source, result, load)
    measured.samples["user"] += share.first_user
    for session in result.sessions:
        session.user += share.first_user
    result.sends, result.receipts, result.looks = Spool(), Spool(), Spool()  # in the samples now
    return measured


def _to_samples(
    kind: TargetKind, scenario: Scenario, case: Case, repeat: int, source: Any, result: ClientResult, load: ProcessLoad
) -> Measured:
    end_s = source.started + scenario.duration_s
    if _markers_lost(result):
        frame = _samples_frame(_change_samples(result, source, end_s), source.started, scenario.warmup_s, case, repeat)
        outputs = sum(source.started + scenario.warmup_s <= look.recv_s <= end_s for look in result.looks)
        return Measured(frame, result, load, "change", outputs)
    captured = result.origin_times if kind.source == "generated" else source.capture_times(end_s)
    per_user = samples_by_user(result, captured, grace_end_s=end_s, listen_end_s=end_s + GRACE_S)
    frames = [_samples_frame(rows, source.started, scenario.warmup_s, case, repeat) for rows in per_user]
    frames = [frame for frame in frames if len(frame)]
    samples = pd.concat(frames, ignore_index=True) if frames else _samples_frame([], 0.0, 0.0, case, repeat)
    return Measured(samples, result, load)


async def _drive_and_probe(
    client: Any, source: Any, config: ClientConfig, seed: int, load: ProcessLoad
) -> ClientResult:
    """The client's run, with a probe of this process's event loop and memory beside it."""
    probe = asyncio.create_task(_probe(load))
    try:
        return await _drive(client, source, config, seed, load)
    finally:
        probe.cancel()


async def _probe(load: ProcessLoad) -> None:
    """A loop that wakes late is a saturated load generator: its sends and receipt times are late too."""
    start = last_rss = time.perf_counter()
    load.rss_mb.append((0.0, resident_mb()))
    while True:
        before = time.perf_counter()
        await asyncio.sleep(LAG_PROBE_S)
        now = time.perf_counter()
        load.loop_lag_ms.append(max(0.0, (now - before - LAG_PROBE_S) * 1000))
        if now - last_rss >= RSS_EVERY_S:
            last_rss = now
            load.rss_mb.append((now - start, resident_mb()))


def resident_mb() -> float:
    """This process's resident memory (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


async def _drive(client: Any, camera: Any, config: ClientConfig, seed: int, load: ProcessLoad) -> ClientResult:
    """Start the source and the client, behind the case's network relays when it has a network profile."""
    async with impaired_url(config.url, config.network, seed) as (url, relays):
        camera.start()
        load.started_epoch = time.time()
        result = await client.run(camera, replace(config, url=url))
        result.network_stats += [relay.stats for relay in relays]
    return result


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
    frame = pd.DataFrame.from_records(records, columns=None if records else ["user"])
    for key, value in case.params.items():
        frame[f"param_{key}"] = value
    return frame
