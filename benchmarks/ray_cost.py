"""What local client workers cost on a process pool vs embedded Ray (BENCHMARKS.md, "Load").

    RAY_AUTH_MODE=disabled python benchmarks/ray_cost.py

Prints the start-up time of a warmed pool of 2 client processes, of `ray.init()` and of 2 Ray actors,
the CPU and memory of Ray's processes while idle for 20 s, and how many of Ray's listening sockets are
bound to every interface (`ss -ltnp`), though the node IP is 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path

IDLE_S = 20.0


class Pinger:
    def ping(self) -> int:
        return os.getpid()


def ray_processes() -> dict[int, tuple[int, int]]:
    """pid -> (CPU ticks, resident bytes) of every process whose command line names Ray."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            if b"ray" not in command and b"gcs_server" not in command:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            resident = int((entry / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            found[int(entry.name)] = (int(fields[11]) + int(fields[12]), resident)
        except OSError:
            continue
    return found


def main() -> None:
    from bench.workers import ClientWorkers, WorkerSpec

    start = time.perf_counter()
    ClientWorkers(WorkerSpec(2)).close()
    print(f"process pool of 2, warmed and closed: {time.perf_counter() - start:.2f} s")
    import ray

    start = time.perf_counter()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        _node_ip_address="127.0.0.1",
    )
    print(f"ray.init: {time.perf_counter() - start:.2f} s")
    actors = [ray.remote(num_cpus=1)(Pinger).remote() for _ in range(2)]
    ray.get([actor.ping.remote() for actor in actors])
    print(f"ray.init and 2 actors ready: {time.perf_counter() - start:.2f} s")
    before = ray_processes()
    time.sleep(IDLE_S)
    after = ray_processes()
    ticks = sum(after[pid][0] - before[pid][0] for pid in after if pid in before) / os.sysconf("SC_CLK_TCK")
    resident = sum(rss for _, rss in after.values()) / 2**20
    print(f"Ray idle: {100 * ticks / IDLE_S:.1f} % of a core, {len(after)} processes, {resident:.0f} MB resident")
    listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=False).stdout.splitlines()
    ours = [line for line in listening if "ray" in line or "gcs" in line]
    everywhere = [line for line in ours if "*:" in line or "0.0.0.0:" in line]
    print(f"Ray sockets listening on every interface: {len(everywhere)}")
    ray.shutdown()


if __name__ == "__main__":
    main()
