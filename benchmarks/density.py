"""Client density: how much of a core does the harness spend per simulated user? (BENCHMARKS.md, "Client density")

    python benchmarks/density.py [--users 10] [--duration 20] [--resolution 320x240@15 640x480@30] [--out runs/density]

Runs one case per (transport, resolution) with `--users` users - aiortc-echo and
fastrtc-webrtc over WebRTC, gradio-stream over Gradio's queue (stream_every 0.1 s,
concurrency limit = users, so no user waits for another) - and prints, per case,
the harness process's CPU (% of one core, summed over its client processes), the
core-seconds it spends per client-second (CPU / 100 / users), how many clients one
core drives at that rate, and what the users measured (p50 latency, fps, lost).
Every returned frame is decoded and its marker read, as in any run. The targets run
in their own processes and are not counted. A machine busy with something else
shifts these numbers: rerun a row that looks off.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from bench.runner import run_scenario
from bench.scenario import Scenario, Source, TargetSpec

TRANSPORTS = ("aiortc-echo", "fastrtc-webrtc", "gradio-stream")
STREAM_EVERY_S = 0.1


def resolution(text: str) -> tuple[int, int, float]:
    match = re.fullmatch(r"(\d+)x(\d+)@(\d+(?:\.\d+)?)", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT@FPS, e.g. 320x240@15")
    return int(match[1]), int(match[2]), float(match[3])


def target(transport: str, users: int) -> TargetSpec:
    if transport == "gradio-stream":
        return TargetSpec(kind=transport, users=users, stream_every=STREAM_EVERY_S, concurrency_limit=users)
    if transport == "fastrtc-webrtc":
        return TargetSpec(kind=transport, users=users, concurrency_limit=users)
    return TargetSpec(kind=transport, users=users)


def measure(transport: str, size: tuple[int, int, float], users: int, duration_s: float, out: Path) -> dict[str, Any]:
    """One case; its summary.json case record, with the run id."""
    width, height, fps = size
    scenario = Scenario(
        name=f"density-{transport}-{width}x{height}",
        duration_s=duration_s,
        warmup_s=min(3.0, duration_s / 4),
        source=Source(width=width, height=height, fps=fps),
        targets=[target(transport, users)],
    )
    result = run_scenario(scenario, Path(__file__), out)  # run.json: the scenario came from this script
    (case,) = result.summary["cases"]
    return {**case, "run_id": result.summary["run_id"]}


def row(transport: str, size: tuple[int, int, float], users: int, case: dict[str, Any]) -> list[str]:
    cpu = case.get("client_cpu_percent")
    cpu = sum(cpu) if isinstance(cpu, list) else cpu
    # all client processes' CPU seconds per user-second (older streambench: the one harness process's share)
    per_client = case.get("client_core_s_per_client_s") or (cpu / 100 / users if cpu is not None else None)
    latency = (case.get("latency_ms") or {}).get("p50")
    width, height, fps = size
    return [
        transport,
        f"{width}x{height}@{fps:g}",
        str(users),
        f"{cpu:.1f}" if cpu is not None else "-",
        f"{per_client:.3f}" if per_client else "-",
        f"{1 / per_client:.0f}" if per_client else "-",
        f"{latency:.1f}" if latency is not None else "-",
        f"{case.get('fps') or 0:.1f}",
        f"{100 * (case.get('lost_ratio') or 0):.1f}%",
        case.get("status", "?"),
        case["run_id"],
    ]


HEADER = ["transport", "resolution", "users", "CPU %", "core-s/client-s", "clients/core", "p50 ms", "fps", "lost"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per case")
    parser.add_argument("--resolution", type=resolution, nargs="+", default=[(320, 240, 15.0), (640, 480, 30.0)])
    parser.add_argument("--transport", choices=TRANSPORTS, nargs="+", default=list(TRANSPORTS))
    parser.add_argument("--out", type=Path, default=Path("runs/density"))
    args = parser.parse_args()
    rows = [[*HEADER, "status", "run"]]
    for size in args.resolution:
        for transport in args.transport:
            case = measure(transport, size, args.users, args.duration, args.out)
            rows.append(row(transport, size, args.users, case))
            print("  ".join(rows[-1]), flush=True)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for cells in rows:
        print(
            "  ".join(
                cell.rjust(width) if i > 1 else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            )
        )


if __name__ == "__main__":
    main()
