"""Is our Gradio client a browser? The same app driven by headless Chromium and by our client.

Both stream a marker camera into one `.stream()` app, one after the other, and
are measured the same way: how often a frame is sent, how many outputs are
shown per second, and how long a sent frame takes to be shown. Sent-to-shown
(not capture-to-shown) because the browser's fake camera has no capture clock
we can read; our client's content latency adds only the wait for the next
capture tick on top. Each metric agrees when client / browser is within
`tolerance` of 1.

On one machine the browser also takes CPU from the app. As a control, our
client is measured a second time beside an idle Chromium showing the same
page's camera preview: what is left between that and the browser is the
browser's own work (its JS client, image fetch and decode).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from pathlib import Path
from threading import Event, Thread

import numpy as np
import pandas as pd

from bench.browser import BrowserTrace, chromium_path, idle_gradio_page, record_gradio_stream, write_y4m
from bench.catalog import TARGET_KINDS
from bench.launcher import TargetCommand, launch
from bench.runner import run_scenario
from bench.scenario import Scenario, Source, TargetSpec
from bench.store import atomic_write_json, load_run

TOLERANCE = 0.15
CAMERA_FPS = 30
CAMERA_LOOP_S = 20  # the fake camera loops its file; longer than any latency, so a frame ID is unambiguous


@dataclass(frozen=True)
class StreamMetrics:
    send_interval_ms: float | None  # median gap between consecutive frames sent
    shown_per_s: float | None  # outputs shown per second
    sent_to_shown_ms: float | None  # median, over shown outputs
    sent: int
    shown: int
    stages_ms: dict[str, float] = field(default_factory=dict)  # medians: where sent-to-shown goes


@dataclass(frozen=True)
class MetricAgreement:
    metric: str
    browser: float | None
    client: float | None
    ratio: float | None  # client / browser
    agrees: bool


@dataclass
class FidelityResult:
    stream_every: float
    app: str
    duration_s: float
    browser: StreamMetrics
    client: StreamMetrics
    client_beside_browser: StreamMetrics | None  # the control: an idle Chromium on the page during our client's run
    client_run: str
    tolerance: float = TOLERANCE
    agreements: list[MetricAgreement] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return all(a.agrees for a in self.agreements)

    def to_dict(self) -> dict:
        return asdict(self) | {"agrees": self.agrees}


def stream_metrics(
    sends: list[float],
    shows: list[tuple[float, float | None]],
    since_s: float,
    stages_ms: dict[str, float] | None = None,
) -> StreamMetrics:
    """`sends`: send times (s); `shows`: (shown time, its frame's send time or None); before `since_s` dropped."""
    sent = np.sort([t for t in sends if t >= since_s])
    shown = sorted((t, s) for t, s in shows if t >= since_s)
    times = np.array([t for t, _ in shown])
    latencies = [(t - s) * 1000 for t, s in shown if s is not None]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return StreamMetrics(
        send_interval_ms=float(np.median(np.diff(sent)) * 1000) if len(sent) > 1 else None,
        shown_per_s=float((len(times) - 1) / span) if span > 0 else None,
        sent_to_shown_ms=float(np.median(latencies)) if latencies else None,
        sent=len(sent),
        shown=len(times),
        stages_ms=stages_ms or {},
    )


def browser_metrics(trace: BrowserTrace, warmup_s: float) -> StreamMetrics:
    """Each shown output is matched with the latest send of the frame it shows."""
    if not trace.sends:
        return stream_metrics([], [], 0.0)
    since = trace.sends[0].t_s + warmup_s
    shows, to_src, to_load = [], [], []
    for show in trace.shows:
        matches = (s for s in trace.sends if s.frame_id == show.frame_id and s.t_s <= show.t_s)
        sent = [s.t_s for s in matches] if show.frame_id is not None else []
        shows.append((show.t_s, sent[-1] if sent else None))
        if sent and show.src_set_s is not None and show.t_s >= since:
            to_src.append((show.src_set_s - sent[-1]) * 1000)
            to_load.append((show.t_s - show.src_set_s) * 1000)
    stages = {"send_to_event_ms": float(np.median(to_src)), "fetch_ms": float(np.median(to_load))} if to_src else {}
    return stream_metrics([s.t_s for s in trace.sends], shows, since, stages)


def client_metrics(samples: pd.DataFrame) -> StreamMetrics:
    measured = samples[~samples["warmup"]] if len(samples) else samples
    if not len(measured):
        return stream_metrics([], [], 0.0)
    shown = measured[measured["status"] == "ok"]
    stages = {c.removeprefix("stage_"): float(shown[c].median()) for c in shown.columns if c.startswith("stage_")}
    return stream_metrics(
        measured["send_s"].dropna().tolist(), list(zip(shown["recv_s"], shown["send_s"], strict=True)), 0.0, stages
    )


def agreements(browser: StreamMetrics, client: StreamMetrics, tolerance: float) -> list[MetricAgreement]:
    rows = []
    for metric in ("send_interval_ms", "shown_per_s", "sent_to_shown_ms"):
        theirs, ours = getattr(browser, metric), getattr(client, metric)
        ratio = ours / theirs if theirs and ours is not None else None
        rows.append(MetricAgreement(metric, theirs, ours, ratio, ratio is not None and abs(ratio - 1) <= tolerance))
    return rows


def run_fidelity(
    out_dir: Path,
    stream_every: float = 0.1,
    duration_s: float = 12.0,
    warmup_s: float = 3.0,
    width: int = 640,
    height: int = 480,
    tolerance: float = TOLERANCE,
    control: bool = True,
) -> FidelityResult:
    """Start our gradio-stream target once; measure Chromium, then our client, against it; write fidelity.json."""
    chromium_path()  # no browser, no comparison: say so before starting anything
    out_dir.mkdir(parents=True, exist_ok=True)
    camera_file = out_dir / "camera.y4m"
    write_y4m(camera_file, width, height, CAMERA_FPS, CAMERA_FPS * CAMERA_LOOP_S)
    # a stopped stream keeps its concurrency slot until its page disconnects or 30 s pass without input (Findings),
    # so the app gets a slot per measurement: each one still streams alone
    kind = TARGET_KINDS["gradio-stream"]
    command = TargetCommand(kind.argv({"stream_every": stream_every, "concurrency_limit": 3}), kind.ready_path)
    with launch(command, out_dir / "app.log") as app:
        scenario = Scenario(
            name="fidelity-client",
            duration_s=duration_s,
            warmup_s=warmup_s,
            source=Source(width=width, height=height, fps=CAMERA_FPS),
            targets=[TargetSpec(kind="gradio-stream", url=app.url)],
        )
        trace = asyncio.run(record_gradio_stream(app.url, camera_file, duration_s, out_dir / "browser"))
        run = run_scenario(scenario, out_dir / "scenario.toml", out_dir / "runs")
        beside = client_beside_browser(app.url, camera_file, out_dir / "idle-browser", scenario) if control else None
    browser = browser_metrics(trace, warmup_s)
    client = client_metrics(load_run(run.path).samples)
    result = FidelityResult(
        stream_every, "targets/gradio_stream.py", duration_s, browser, client,
        client_metrics(load_run(beside).samples) if beside else None, str(run.path), tolerance,
        agreements(browser, client, tolerance),
    )  # fmt: skip
    atomic_write_json(out_dir / "fidelity.json", result.to_dict())
    return result


def client_beside_browser(
    app_url: str, camera_file: Path, work_dir: Path, scenario: Scenario, stream_first_s: float = 0.0
) -> Path:
    """Our client's run while Chromium idles on the page in another thread; the run directory."""
    ready, done, failures = Event(), Event(), []

    def idle() -> None:
        try:
            asyncio.run(idle_gradio_page(app_url, camera_file, work_dir, ready, done, stream_first_s))
        except Exception as exc:  # reported in the caller's thread
            failures.append(exc)
            ready.set()

    thread = Thread(target=idle, name="idle-chromium", daemon=True)
    thread.start()
    try:
        ready.wait(timeout=90)
        if failures:
            raise failures[0]
        return run_scenario(scenario, work_dir / "scenario.toml", work_dir / "runs").path
    finally:
        done.set()
        thread.join(timeout=30)
