"""Client workers: where a case's users run.

One process (the default) runs every user on one event loop. `--workers N` spreads the
users over N client processes on this machine (a process pool: no server, no port).
`--cluster ADDRESS` runs them as actors on a Ray cluster the user started (`ray start`),
so the load can come from other machines. Nothing distributed starts unless asked.

Why not Ray for the local workers too: measured on this machine (BENCHMARKS.md, "Load"),
an embedded `ray.init()` takes 2-4 s and its daemons listen on every interface (Ray 2.60
adds 0.0.0.0 listeners even with the node IP set to 127.0.0.1), which breaks our rule
that everything we start binds 127.0.0.1 only. A cluster the user runs is theirs to expose.

Every worker measures its own users against its own clock (`bench.measure`) and returns
raw samples; merging is concatenation, so percentiles over the merged rows are exact.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import socket
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import resource_tracker
from typing import Any

from bench.errors import TargetError, UsageError
from bench.measure import Measured, Share, measure_share
from bench.records import ClientResult
from bench.scenario import Case, Scenario


@dataclass(frozen=True)
class WorkerSpec:
    """How many client processes a case's users are spread over, and on which Ray cluster (None: this machine)."""

    processes: int = 1
    cluster: str | None = None

    @property
    def distributed(self) -> bool:
        return self.processes > 1 or self.cluster is not None


def split_users(users: int, processes: int) -> list[Share]:
    """Users dealt out as evenly as they go, in order; no empty share."""
    count = max(1, min(users, processes))
    base, extra = divmod(users, count)
    shares, first = [], 0
    for index in range(count):
        size = base + (index < extra)
        shares.append(Share(first, size))
        first += size
    return shares


class ClientWorkers:
    """Runs each case's shares in this process, a local process pool or Ray actors; `close()` ends them all."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self._pool: ProcessPoolExecutor | None = None
        self._actors: list[Any] = []
        if spec.cluster is not None:
            self._actors = _ray_actors(spec)
        elif spec.processes > 1:
            self._pool = _process_pool(spec.processes)

    def measure(self, scenario: Scenario, case: Case, url: str, repeat: int) -> list[Measured]:
        users = int(case.settings.get("users") or 1)
        shares = split_users(users, self.spec.processes)
        if self._actors:
            import ray

            calls = [
                actor.measure.remote(scenario, case, url, s, repeat)
                for actor, s in zip(self._actors, shares, strict=False)
            ]
            try:
                return ray.get(calls)
            except ray.exceptions.RayError as exc:
                raise TargetError(f"a Ray client worker failed: {exc}") from exc
        if self._pool is not None:
            futures = [self._pool.submit(measure_share, scenario, case, url, share, repeat) for share in shares]
            return [future.result() for future in futures]
        return [measure_share(scenario, case, url, Share(0, users), repeat)]

    def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            for process in list((pool._processes or {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            del pool
            gc.collect()  # the pool's queues and their semaphores, before their tracker goes
            # those semaphores started multiprocessing's resource tracker, which would live as long as we do
            resource_tracker._resource_tracker._stop()
        if self._actors:
            import ray

            for actor in self._actors:
                ray.kill(actor)
            ray.shutdown()


@contextlib.contextmanager
def client_workers(spec: WorkerSpec | None) -> Iterator[ClientWorkers]:
    workers = ClientWorkers(spec or WorkerSpec())
    try:
        yield workers
    finally:
        workers.close()


def merge_results(results: list[ClientResult]) -> ClientResult:
    """One ClientResult for the case from its shares' (per-frame records are in the samples already)."""
    merged = ClientResult()
    for result in results:
        merged.sessions += result.sessions
        merged.errors += result.errors
        merged.undecoded += result.undecoded
        for name, count in result.orientations.items():
            merged.orientations[name] = merged.orientations.get(name, 0) + count
        merged.app_settings.update(result.app_settings)
        merged.tick_lag_ms += result.tick_lag_ms
        merged.network_stats += result.network_stats
        merged.client_errors += result.client_errors
        merged.warnings += [w for w in result.warnings if w not in merged.warnings]
        merged.origin_times.update(result.origin_times)
        for name, value in result.metrics.items():
            merged.metrics[name] = merged.metrics.get(name, [] if isinstance(value, list) else 0) + value
        merged.compared_outputs += result.compared_outputs
        merged.unchanged_outputs += result.unchanged_outputs
        merged.harness_notes += [n for n in result.harness_notes if n not in merged.harness_notes]
    return merged


def _process_pool(processes: int) -> ProcessPoolExecutor:
    """Spawned (not forked: the harness may hold threads), each dying with the harness, warmed so that the
    first case's shares start together instead of one import apart."""
    pool = ProcessPoolExecutor(processes, multiprocessing.get_context("spawn"), initializer=_worker_started)
    for future in [pool.submit(_warm, 0.5) for _ in range(processes)]:
        future.result()
    return pool


def _worker_started() -> None:
    from bench.launcher import die_with_parent

    die_with_parent()


def _warm(hold_s: float) -> None:
    """Import what a share needs; hold long enough that every pool process takes one of these."""
    import time

    import bench.clients.gradio_stream
    import bench.clients.webrtc  # noqa: F401 - the heaviest imports (aiortc, av)

    time.sleep(hold_s)


class ClientWorker:
    """A Ray actor: one client process of the cluster, measuring the shares it is given."""

    def measure(self, scenario: Scenario, case: Case, url: str, share: Share, repeat: int) -> Measured:
        return measure_share(scenario, case, url, share, repeat)


def _ray_actors(spec: WorkerSpec) -> list[Any]:
    import logging

    _gcs_answers(spec.cluster or "")
    try:
        import ray
    except ImportError as exc:
        raise UsageError("--cluster runs the client workers on Ray: pip install -e '.[cluster]'") from exc

    try:
        ray.init(address=spec.cluster, log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise UsageError(f"no Ray cluster at {spec.cluster}: {exc} (start one with `ray start --head`)") from exc
    actor = ray.remote(num_cpus=1)(ClientWorker).options(scheduling_strategy="SPREAD")
    return [actor.remote() for _ in range(spec.processes)]


def _gcs_answers(address: str) -> None:
    """Refuse an address where nothing listens at once: `ray.init` would retry it for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and the like: Ray finds the cluster itself
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        raise UsageError(
            f"no Ray cluster at {address}: nothing answers there ({exc.strerror or exc}); start one with "
            "`ray start --head` and pass the address it prints"
        ) from exc
