"""Is our WebRTC client a browser? One FastRTC app driven by headless Chromium, then by our aiortc client.

Both run as `bench run` cases against one launch of `targets/fastrtc_webrtc.py`
(transform flip, set through POST /input_hook), so both are measured by the same
runner and summary: content latency from the camera's capture to the frame
shown, p50 and p95, frames shown per second, and the share of sent frames never
shown. Chromium's side is `bench.clients.chromium` (FastRTC's frontend, a frame
is shown at the remote <video>'s `expectedDisplayTime`); ours is
`bench.clients.webrtc` (a frame is shown when decoded). Each metric agrees when
Chromium / ours is within `tolerance` of 1; the lost ratio is compared as the
share delivered (1 - lost), which is defined when ours lost nothing.

Where the two differ, Chromium's own accounting says why: per frame, capture ->
last packet received, received -> presented (libwebrtc's jitter buffer,
decode, render) and presented -> expected on screen (the compositor), with
the receiver's `getStats()` jitter buffer and decode times beside.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.browser import chromium_path
from bench.catalog import TARGET_KINDS
from bench.fidelity import TOLERANCE
from bench.launcher import TargetCommand, launch
from bench.runner import run_scenario
from bench.scenario import Scenario, Source, TargetSpec
from bench.store import atomic_write_json, load_run

CAMERA_FPS = 30
METRICS = ("latency_p50_ms", "latency_p95_ms", "fps", "delivered_ratio")
# Chromium's own per-frame accounting, from its case's stream_metrics and stages
BROWSER_DETAILS = (
    "capture_to_received_ms",
    "received_to_presented_ms",
    "presented_to_shown_ms",
    "jitter_buffer_ms",
    "decode_ms",
    "processing_ms",
    "page_read_ms",
    "camera_lag_ms",
    "clock_error_ms",
    "clock_drift_ms",
    "chromium_cpu_percent",
)


@dataclass(frozen=True)
class SideMetrics:
    """One client's case: the compared metrics, and what else it measured."""

    latency_p50_ms: float | None
    latency_p95_ms: float | None
    fps: float | None
    delivered_ratio: float | None  # 1 - lost_ratio
    lost_ratio: float | None
    n: int
    status: str
    client_cpu_percent: float | None  # the harness process (our client runs in it)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Agreement:
    metric: str
    browser: float | None
    client: float | None
    ratio: float | None  # Chromium / ours
    agrees: bool


@dataclass
class WebRTCFidelityResult:
    app: str
    transform: str
    duration_s: float
    browser: SideMetrics
    client: SideMetrics
    browser_run: str
    client_run: str
    load_average: dict[str, list[float]]  # os.getloadavg() before and after: the machine is shared
    tolerance: float = TOLERANCE
    agreements: list[Agreement] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return all(a.agrees for a in self.agreements)

    def to_dict(self) -> dict:
        return asdict(self) | {"agrees": self.agrees}


def side_metrics(case: dict[str, Any], details: tuple[str, ...] = ()) -> SideMetrics:
    latency = case.get("latency_ms") or {}
    lost = case.get("lost_ratio")
    found: dict[str, Any] = {}
    for name in details:
        value = (case.get("stream_metrics") or {}).get(name)
        if value is None and name in (case.get("stages_ms") or {}):
            value = case["stages_ms"][name]
        if value is not None:
            found[name] = value
    return SideMetrics(
        latency_p50_ms=latency.get("p50"),
        latency_p95_ms=latency.get("p95"),
        fps=case.get("fps"),
        delivered_ratio=None if lost is None else 1 - lost,
        lost_ratio=lost,
        n=case.get("n", 0),
        status=case.get("status", "failed"),
        client_cpu_percent=case.get("client_cpu_percent"),
        details=found,
    )


def agreements(browser: SideMetrics, client: SideMetrics, tolerance: float) -> list[Agreement]:
    rows = []
    for metric in METRICS:
        theirs, ours = getattr(browser, metric), getattr(client, metric)
        ratio = theirs / ours if ours and theirs is not None else None
        rows.append(Agreement(metric, theirs, ours, ratio, ratio is not None and abs(ratio - 1) <= tolerance))
    return rows


def run_webrtc_fidelity(
    out_dir: Path,
    duration_s: float = 12.0,
    warmup_s: float = 3.0,
    transform: str = "flip",
    width: int = 640,
    height: int = 480,
    tolerance: float = TOLERANCE,
) -> WebRTCFidelityResult:
    """Launch the FastRTC target once; run it as a case with Chromium, then with our client; write fidelity.json."""
    chromium_path()  # no browser, no comparison: say so before starting anything
    out_dir.mkdir(parents=True, exist_ok=True)
    kind = TARGET_KINDS["fastrtc-webrtc"]
    before = list(os.getloadavg())
    # a closed peer connection may hold its slot a moment: one slot per client, each still streams alone
    with launch(TargetCommand(kind.argv({"concurrency_limit": 2}), kind.ready_path), out_dir / "app.log") as app:
        runs = {}
        for client in ("chromium", "webrtc"):
            scenario = Scenario(
                name=f"fidelity-webrtc-{client}",
                duration_s=duration_s,
                warmup_s=warmup_s,
                source=Source(width=width, height=height, fps=CAMERA_FPS),
                targets=[TargetSpec(kind="fastrtc-webrtc", url=app.url, transform=transform, client=client)],
            )
            runs[client] = run_scenario(scenario, out_dir / f"{client}.toml", out_dir / "runs").path
    cases = {client: load_run(path).summary["cases"][0] for client, path in runs.items()}
    browser = side_metrics(cases["chromium"], BROWSER_DETAILS)
    client = side_metrics(cases["webrtc"])
    result = WebRTCFidelityResult(
        "targets/fastrtc_webrtc.py", transform, duration_s, browser, client, str(runs["chromium"]),
        str(runs["webrtc"]), {"before": before, "after": list(os.getloadavg())}, tolerance,
        agreements(browser, client, tolerance),
    )  # fmt: skip
    atomic_write_json(out_dir / "fidelity.json", result.to_dict())
    return result
