"""Is our HLS player model a browser? One gradio-hls stream played by headless Chromium and by our HLSClient.

Chromium runs Gradio's own page (its hls.js, configured as Gradio configures
it), presses Start and times every frame its <video> presents; our HLSClient
plays a fresh launch of the same app with the same settings, and its "hls.js
default" policy says when that player would present each frame. Each side gets
its own launch, so neither inherits the other's warm caches or queue slot.
Both are measured the same way over the same stretch of the stream, the frames
made in its first `duration_s`:

- glass-to-glass p50 / p95: made (GET /stamps) to presented;
- time to first frame: the POST /queue/join to the first frame presented,
  and the player's share of it, from the queue message carrying the
  playlist URL (the rest is the app making and listing its first chunk);
- rebuffers and stalled seconds: the playhead stopped, i.e. a presented frame
  came more than STALL_S later than its spacing at capture after the one
  before (a dropped frame does not count, a frozen playhead does);
- frames presented per second of playback (stalls left out).

Two runs are two timelines: whether an hls.js playlist reload lands just before
or just after a segment is listed is a matter of tens of ms, and a miss costs
half a target duration that Gradio grows by one second per segment
(bench.media.hls_player). Both tick once a chunk, so the phase found at the
start holds for the whole run. The model is therefore also checked on the
page's own timeline, in its two parts: its reload rule against each reload
hls.js made after the load before it (`reload_error_ms`), and its player fed
each segment when the page's own load brought it and in the page's download
time (`model_on_page_loads`). What is left between that replay and the page is
the page's own demux, decode and render, per frame (`presentation_delay_ms`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from bench.browser import HLSBrowserTrace, chromium_path, record_gradio_hls
from bench.catalog import TARGET_KINDS
from bench.fidelity import TOLERANCE
from bench.launcher import TargetCommand, launch
from bench.media.hls_player import HLSJS_DEFAULT, Playback, Policy, Segment, play
from bench.runner import run_scenario
from bench.scenario import Scenario, Source, TargetSpec, expand_cases
from bench.store import RunData, atomic_write_json, load_run

FPS = 30
STALL_S = 0.1  # a presented frame this much later than its capture spacing: the playhead stopped (vsync jitter ~17 ms)
MODEL_SLACK_S = 1.0  # our client's window runs this much past the compared stretch: the app starts making frames
# a little after the join
BROWSER_TIMEOUT_S = 30.0  # past the stretch: a page whose playback stopped for good is recorded this long, no longer
# the "hls.js default" player, told of each segment when the page's own playlist load brought it (no reload model)
AS_THE_PAGE_LOADED = Policy("hls.js as the page loaded", HLSJS_DEFAULT.sync_count, hlsjs_reloads=False)
METRICS = (
    "glass_to_glass_p50_ms",
    "glass_to_glass_p95_ms",
    "first_frame_ms",
    "first_frame_after_url_ms",
    "rebuffers",
    "stalled_s",
    "presented_per_s",
)


@dataclass(frozen=True)
class Shown:
    """One frame of the compared stretch as a player presented it (perf_counter s)."""

    frame_id: int
    made_s: float
    shown_s: float
    presented: int = 1  # frames presented since the previous one shown here, itself included


@dataclass(frozen=True)
class PlayerMetrics:
    glass_to_glass_p50_ms: float | None
    glass_to_glass_p95_ms: float | None
    first_frame_ms: float | None
    first_frame_after_url_ms: float | None  # the player's share: from the queue message with the playlist URL
    rebuffers: int
    stalled_s: float
    presented_per_s: float | None
    timed: int  # frames of the stretch presented and timed


@dataclass(frozen=True)
class Agreement:
    metric: str
    browser: float | None
    model: float | None
    ratio: float | None  # model / browser
    agrees: bool


@dataclass(frozen=True)
class BrowserFacts:
    """What the page did beyond the metrics: checks on the measurement itself, and hls.js's own schedule."""

    callbacks: int  # requestVideoFrameCallback calls over the whole recording
    undecoded: int  # of them, frames whose marker could not be read
    unknown_ids: int  # markers read as an ID the app never made: must be 0
    join_after_click_ms: float | None
    first_load_after_url_ms: float | None  # from the queue message with the playlist URL to hls.js's first load
    waiting_events: int  # the <video>'s own 'waiting' events after it first played: its rebuffers, as a cross-check
    playlist_loads_s: list[float]  # hls.js's playlist loads, s after its first
    playlist_misses: int  # reloads that found no new segment: each waits half a target duration for the next


@dataclass
class HLSFidelityResult:
    media_format: str
    chunk_s: float
    duration_s: float
    app: str
    browser: PlayerMetrics
    model: PlayerMetrics
    model_on_page_loads: PlayerMetrics  # the model's player told of segments by the page's own playlist loads
    presentation_delay_ms: dict[str, float | None]  # browser - model_on_page_loads, per frame: p50, p95
    reload_error_ms: dict[str, float | None]  # the page's reloads against the model's reload rule: p50, max of |error|
    browser_facts: BrowserFacts
    model_run: str
    load_average: dict[str, list[float]]  # os.getloadavg() before and after
    tolerance: float = TOLERANCE
    agreements: list[Agreement] = field(default_factory=list)
    agreements_on_page_loads: list[Agreement] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return all(a.agrees for a in self.agreements)

    @property
    def agrees_on_page_loads(self) -> bool:
        """The model's player, told what the page knew, plays like the page: differences between the two runs are
        then their timelines' (the reload phase, the app's first chunk), not the player model's."""
        return all(a.agrees for a in self.agreements_on_page_loads)

    def to_dict(self) -> dict:
        verdicts = {"agrees": self.agrees, "agrees_on_page_loads": self.agrees_on_page_loads}
        return asdict(self) | {"mode": "gradio-hls"} | verdicts


def player_metrics(shown: list[Shown], first_frame_ms: float | None, url_ms: float | None = None) -> PlayerMetrics:
    """The same reduction for every side: a stall is a rise in glass-to-glass between consecutive presented frames
    (a player that plays on never shows a frame later than its capture spacing; a dropped frame lowers nothing).
    `url_ms`: from the join to the queue message with the playlist URL, the app's share of the first frame."""
    ordered = sorted(shown, key=lambda s: s.shown_s)
    latency = np.array([s.shown_s - s.made_s for s in ordered])
    rises = np.diff(latency)
    stalls = rises[rises > STALL_S]
    playing_s = ordered[-1].shown_s - ordered[0].shown_s - stalls.sum() if len(ordered) > 1 else 0.0
    presented = sum(s.presented for s in ordered[1:])  # the first one starts the span
    p50, p95 = np.percentile(latency * 1000, [50, 95]) if len(latency) else (None, None)
    return PlayerMetrics(
        glass_to_glass_p50_ms=None if p50 is None else float(p50),
        glass_to_glass_p95_ms=None if p95 is None else float(p95),
        first_frame_ms=first_frame_ms,
        first_frame_after_url_ms=None if first_frame_ms is None or url_ms is None else first_frame_ms - url_ms,
        rebuffers=len(stalls),
        stalled_s=float(stalls.sum()),
        presented_per_s=float(presented / playing_s) if playing_s > 0 else None,
        timed=len(ordered),
    )


def stretch(made: dict[int, float], duration_s: float) -> dict[int, float]:
    """The frames made in the stream's first `duration_s`: what every side is compared on."""
    first = min(made.values(), default=0.0)
    return {i: t for i, t in made.items() if t - first < duration_s}


def browser_shown(trace: HLSBrowserTrace, made: dict[int, float]) -> list[Shown]:
    """Each frame of the stretch at its first presentation; frames presented between two callbacks (Chromium's
    presentedFrames count) are credited to the next frame timed."""
    shown: list[Shown] = []
    seen: set[int] = set()
    last: int | None = None
    for frame in sorted(trace.frames, key=lambda f: f.shown_s):
        if frame.frame_id is None or frame.frame_id not in made or frame.frame_id in seen:
            continue
        seen.add(frame.frame_id)
        count = 1 if last is None else max(1, frame.presented - last)
        shown.append(Shown(frame.frame_id, made[frame.frame_id], frame.shown_s, count))
        last = frame.presented
    return shown


def browser_first_frame_s(trace: HLSBrowserTrace, made: dict[int, float]) -> float | None:
    """The first presentation: the first callback, less the frames Chromium presented before it (its
    presentedFrames), taken at the stream's frame spacing."""
    first = min((f for f in trace.frames if f.frame_id in made), key=lambda f: f.shown_s, default=None)
    if first is None:
        return None
    spacing = float(np.median(np.diff(sorted(made.values())))) if len(made) > 1 else 0.0
    return first.shown_s - max(0, first.presented - 1) * spacing


def replay_on_page_loads(trace: HLSBrowserTrace, made: dict[int, float], per_segment: int) -> Playback | None:
    """The model's player (hls.js's start position, fetching in order, real-time playback, stalls) fed what the page
    knew: each segment from the moment the page's own playlist load that first listed it came back, downloaded in
    the time the page's download took; frames per segment as the app cuts them (`per_segment` in making order)."""
    loads = [r for r in trace.playlists if r.end_s is not None and r.durations]
    if not loads:
        return None
    downloads = {r.url.rsplit("/", 1)[-1]: r.end_s - r.start_s for r in trace.segments if r.end_s is not None}
    typical = float(np.median(list(downloads.values()))) if downloads else 0.0
    ids = sorted(made, key=made.__getitem__)
    longest = max(loads, key=lambda r: len(r.durations or []))
    segments = []
    for index, duration in enumerate(longest.durations or []):
        frames = ids[index * per_segment : (index + 1) * per_segment]
        if not frames:
            break
        learned = next(r for r in loads if len(r.durations or []) > index)
        assert learned.end_s is not None
        segments.append(
            Segment(
                index=index,
                listed_s=learned.end_s,
                fetch_s=downloads.get((longest.uris or [])[index].rsplit("/", 1)[-1], typical),
                duration_s=duration,
                target_duration_s=learned.target_duration_s or duration,
                frames=tuple((i, made[i] - made[frames[0]]) for i in frames),
            )
        )
    first_back = loads[0].end_s
    assert first_back is not None
    return play(segments, first_back, AS_THE_PAGE_LOADED)


def reload_error_ms(trace: HLSBrowserTrace) -> dict[str, float | None]:
    """How far each of the page's playlist reloads came from the model's schedule, p50 and max of |error|.

    The schedule is hls.js's: from the level load (the second load; the first is the manifest), each next load is
    due one last-segment duration after the previous one was due when that one brought a new segment, half a
    target duration when not, and at once when its answer came later than that."""
    loads = [r for r in trace.playlists if r.durations and r.target_duration_s and r.end_s is not None]
    if len(loads) < 3:
        return {"p50": None, "max": None}
    due, errors = loads[1].start_s, []
    for before, load, after in zip(loads, loads[1:], loads[2:], strict=False):
        durations, target = load.durations or [], load.target_duration_s or 0.0
        interval = min(target, durations[-1]) if len(durations) != len(before.durations or []) else target / 2
        due = max(due + interval, load.end_s or 0.0)
        errors.append(abs(after.start_s - due) * 1000)
    return {"p50": float(np.median(errors)), "max": max(errors)}


def agreements(browser: PlayerMetrics, model: PlayerMetrics, tolerance: float) -> list[Agreement]:
    """Per metric: model / browser within `tolerance` of 1; counts of zero agree only with zero."""
    rows = []
    for metric in METRICS:
        theirs, ours = getattr(browser, metric), getattr(model, metric)
        if theirs is None or ours is None:
            rows.append(Agreement(metric, theirs, ours, None, False))
        elif theirs == 0:
            rows.append(Agreement(metric, theirs, ours, None, ours == 0))
        else:
            ratio = ours / theirs
            rows.append(Agreement(metric, theirs, ours, ratio, abs(ratio - 1) <= tolerance))
    return rows


@dataclass(frozen=True)
class Side:
    """One player's presentations of the stretch, and its time to first frame."""

    shown: list[Shown]
    first_frame_ms: float | None
    url_ms: float | None  # from the join to the queue message with the playlist URL

    def metrics(self) -> PlayerMetrics:
        return player_metrics(self.shown, self.first_frame_ms, self.url_ms)


def browser_side(trace: HLSBrowserTrace, window: dict[int, float]) -> Side:
    first_s = browser_first_frame_s(trace, window)
    return Side(browser_shown(trace, window), _since_join_ms(trace, first_s), _since_join_ms(trace, trace.url_s))


def model_side(run: RunData, duration_s: float) -> Side:
    """Our HLSClient's "hls.js default" presentations, read back from its run directory."""
    samples: pd.DataFrame = run.samples
    if not len(samples):
        return Side([], None, None)
    window = stretch(dict(zip(samples["sample_id"].astype(int), samples["capture_s"], strict=True)), duration_s)
    rows = samples[samples["sample_id"].isin(window) & samples["recv_s"].notna()]
    sessions = run.summary["cases"][0].get("sessions") or [{}]
    phases = sessions[0].get("phases_ms", {})
    return Side(
        [Shown(int(r.sample_id), float(r.capture_s), float(r.recv_s)) for r in rows.itertuples()],
        phases.get("first_frame_ms"),
        phases.get("playlist_ms"),
    )


def replay_side(trace: HLSBrowserTrace, made: dict[int, float], window: dict[int, float], per_segment: int) -> Side:
    """The model's player on the page's own playlist loads and downloads (`replay_on_page_loads`)."""
    replay = replay_on_page_loads(trace, made, per_segment)
    if replay is None:
        return Side([], None, None)
    shown = [Shown(p.sample_id, window[p.sample_id], p.shown_s) for p in replay.presented if p.sample_id in window]
    return Side(shown, _since_join_ms(trace, replay.first_frame_s), _since_join_ms(trace, trace.url_s))


def presentation_delay_ms(browser: Side, replay: Side) -> dict[str, float | None]:
    """How much later the page presented each frame than the model on the same timeline: p50, p95."""
    modelled = {s.frame_id: s.shown_s for s in replay.shown}
    delays = [(s.shown_s - modelled[s.frame_id]) * 1000 for s in browser.shown if s.frame_id in modelled]
    if not delays:
        return {"p50": None, "p95": None}
    p50, p95 = np.percentile(delays, [50, 95])
    return {"p50": float(p50), "p95": float(p95)}


def run_hls_fidelity(
    out_dir: Path,
    media_format: str = "ts",
    chunk_s: float = 1.0,
    duration_s: float = 14.0,
    tolerance: float = TOLERANCE,
) -> HLSFidelityResult:
    """Launch our gradio-hls app (shape "video") for Chromium, then again for our client; compare; write
    fidelity.json (and the page's raw trace beside it)."""
    chromium_path()  # no browser, no comparison: say so before starting anything
    out_dir.mkdir(parents=True, exist_ok=True)
    load_before = list(os.getloadavg())
    scenario = Scenario(
        name="fidelity-hls-model",
        duration_s=duration_s + MODEL_SLACK_S,
        warmup_s=0,
        source=Source(fps=FPS),
        targets=[TargetSpec(kind="gradio-hls", shape="video", media_format=media_format, chunk_s=chunk_s)],
    )
    kind = TARGET_KINDS["gradio-hls"]
    command = TargetCommand(kind.argv(expand_cases(scenario)[0].settings), kind.ready_path)
    with launch(command, out_dir / "app-browser.log") as app:
        trace = asyncio.run(record_gradio_hls(app.url, out_dir / "browser", duration_s, duration_s + BROWSER_TIMEOUT_S))
        stamps = httpx.get(f"{app.url}/stamps", timeout=10).json()
    atomic_write_json(out_dir / "browser" / "trace.json", asdict(trace) | {"stamps": stamps})
    made = {int(k): float(v) for k, v in stamps.get("samples", {}).items()}
    window = stretch(made, duration_s)
    run = load_run(run_scenario(scenario, out_dir / "scenario.toml", out_dir / "runs").path)

    browser, replay = browser_side(trace, window), replay_side(trace, made, window, max(1, round(chunk_s * FPS)))
    measured = browser.metrics()
    model, on_page_loads = model_side(run, duration_s).metrics(), replay.metrics()
    result = HLSFidelityResult(
        media_format=media_format,
        chunk_s=chunk_s,
        duration_s=duration_s,
        app="targets/gradio_hls.py",
        browser=measured,
        model=model,
        model_on_page_loads=on_page_loads,
        presentation_delay_ms=presentation_delay_ms(browser, replay),
        reload_error_ms=reload_error_ms(trace),
        browser_facts=_facts(trace, made),
        model_run=str(run.path),
        load_average={"before": load_before, "after": list(os.getloadavg())},
        tolerance=tolerance,
        agreements=agreements(measured, model, tolerance),
        agreements_on_page_loads=agreements(measured, on_page_loads, tolerance),
    )
    atomic_write_json(out_dir / "fidelity.json", result.to_dict())
    return result


def _since_join_ms(trace: HLSBrowserTrace, t_s: float | None) -> float | None:
    """From the page's POST /queue/join (or the click, when the hook missed it) to `t_s`."""
    join_s = trace.join_s if trace.join_s is not None else trace.click_s
    return None if t_s is None else (t_s - join_s) * 1000


def _facts(trace: HLSBrowserTrace, made: dict[int, float]) -> BrowserFacts:
    started = min((t for name, t in trace.events if name == "playing"), default=float("inf"))
    loads = [r for r in trace.playlists if r.durations is not None]
    counts = [len(r.durations or []) for r in loads]
    return BrowserFacts(
        callbacks=len(trace.frames),
        undecoded=sum(1 for f in trace.frames if f.frame_id is None),
        unknown_ids=sum(1 for f in trace.frames if f.frame_id is not None and f.frame_id not in made),
        join_after_click_ms=None if trace.join_s is None else (trace.join_s - trace.click_s) * 1000,
        first_load_after_url_ms=(loads[0].start_s - trace.url_s) * 1000 if loads and trace.url_s is not None else None,
        waiting_events=sum(1 for name, t in trace.events if name == "waiting" and t > started),
        playlist_loads_s=[round(r.start_s - loads[0].start_s, 3) for r in loads],
        playlist_misses=sum(1 for before, after in itertools.pairwise(counts) if after == before),
    )
