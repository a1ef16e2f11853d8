"""Matplotlib figures of a run, as PNG bytes. Reads numbers; computes no statistics beyond plotting."""

from __future__ import annotations

import io
import warnings
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use("Agg"): no display here
from matplotlib.ticker import MaxNLocator, PercentFormatter

LOG_SPAN = 10  # swept values spanning more than this factor read better on a log axis
PHASES = ("offer_ms", "ice_connected_ms", "connected_ms", "first_frame_ms", "queue_wait_ms", "first_output_ms")


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # long case names may not fit tight_layout; bbox_inches="tight" still fits them
        warnings.simplefilter("ignore", UserWarning)
        figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _shown(samples: pd.DataFrame, case: str) -> pd.DataFrame:
    frame = samples[(samples["case"] == case) & (~samples["warmup"]) & (samples["status"] == "ok")]
    return frame.sort_values("capture_s")


def _median(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.median()) if len(values) else np.nan


def latency_cdf(samples: pd.DataFrame, cases: list[str], labels: dict[str, str] | None = None) -> bytes:
    figure, axes = plt.subplots(figsize=(9, 4.5))
    for case in cases:
        values = np.sort(_shown(samples, case)["latency_ms"].to_numpy())
        if len(values):
            axes.step(
                values, np.arange(1, len(values) + 1) / len(values), where="post", label=(labels or {}).get(case, case)
            )
    axes.set(xlabel="content latency (ms)", ylabel="fraction of frames", title="Latency CDF per case")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    return _png(figure)


class _Sweep:
    """The cases that sweep `param`, grouped per series (target and what it holds fixed), and where each value
    sits on the x axis: itself when numeric, else its place in scenario order (network=4g)."""

    def __init__(self, cases: list[dict[str, Any]], param: str) -> None:
        self.cases = [c for c in cases if (c.get("params") or {}).get(param) is not None and c.get("latency_ms")]
        values = list(dict.fromkeys(c["params"][param] for c in self.cases))
        self.numeric = all(isinstance(v, int | float) for v in values)
        self.position = {v: (v if self.numeric else index) for index, v in enumerate(values)}
        series: dict[str, list[dict[str, Any]]] = {}
        for case in self.cases:
            series.setdefault(_series_label(case, param), []).append(case)
        # one point is no sweep: a target whose cases differ from another target's in `param` only
        self.series = {label: members for label, members in series.items() if len(members) > 1}
        self.cases = [case for members in self.series.values() for case in members]


def latency_vs_param(cases: list[dict[str, Any]], param: str) -> bytes | None:
    """One panel per swept series (target and what it holds fixed): content p50 and p95 with their 95 % CI bands,
    event-to-display p50, and output fps on a second axis; cases that do not sweep `param` are flat lines."""
    sweep = _Sweep(cases, param)
    series, position, numeric = sweep.series, sweep.position, sweep.numeric
    if not series:
        return None
    flat = [c for c in cases if param not in (c.get("params") or {}) and c.get("latency_ms")][:3]
    columns = min(len(series), 2)
    rows = -(-len(series) // columns)
    figure, grid = plt.subplots(
        rows, columns, figsize=(9 if columns == 1 else 12, 4.5 * rows), squeeze=False, sharey=not numeric
    )
    for axes, (label, members) in zip(grid.flat, series.items(), strict=False):
        members.sort(key=lambda c: position[c["params"][param]])
        x = np.array([position[c["params"][param]] for c in members], dtype=float)
        handles = [
            _line_with_band(axes, x, members, "latency_ms", "p50", "tab:blue", "content p50"),
            _line_with_band(axes, x, members, "latency_ms", "p95", "tab:red", "content p95"),
        ]
        if all(c.get("event_latency_ms") for c in members):
            handles.append(
                _line_with_band(axes, x, members, "event_latency_ms", "p50", "tab:green", "event-to-display p50")
            )
        like = (members[0].get("transform"), members[0].get("kind"))
        for index, case in enumerate(c for c in flat if (c.get("transform"), c.get("kind")) == like):
            handles.append(
                axes.axhline(
                    case["latency_ms"]["p50"],
                    color="0.4",
                    linestyle=(0, (4, 2 + 2 * index)),
                    linewidth=1,
                    label=f"{case['case']} content p50",
                )
            )
        fps_axis = axes.twinx()
        (fps_line,) = fps_axis.plot(
            x, [c.get("fps") or 0 for c in members], "x--", color="tab:orange", label="output fps"
        )
        handles.append(fps_line)
        fps_axis.set_ylabel("output fps", color="tab:orange")
        fps_axis.set_ylim(bottom=0)
        if numeric and x.min() > 0 and x.max() / x.min() > LOG_SPAN:
            axes.set_xscale("log")
        axes.set_xticks(x, [_fmt(c["params"][param]) for c in members])
        axes.minorticks_off()
        axes.set_ylim(bottom=0)
        axes.set(xlabel=param, ylabel="latency (ms)", title=label)
        axes.grid(alpha=0.3)
        axes.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
    for axes in list(grid.flat)[len(series) :]:
        axes.set_visible(False)
    return _png(figure)


def targets_by_param(cases: list[dict[str, Any]], param: str) -> bytes | None:
    """Content p50 of every target that sweeps `param`, on one axis (the RTT sweep: FastRTC vs Gradio at each
    network); only when at least two targets sweep it, else `latency_vs_param` already says it all."""
    sweep = _Sweep(cases, param)
    series, position, swept = sweep.series, sweep.position, sweep.cases
    if len(series) < 2:
        return None
    figure, axes = plt.subplots(figsize=(9, 4.5))
    for colour, (label, members) in zip(
        plt.rcParams["axes.prop_cycle"].by_key()["color"], series.items(), strict=False
    ):
        members.sort(key=lambda c: position[c["params"][param]])
        x = np.array([position[c["params"][param]] for c in members], dtype=float)
        _line_with_band(axes, x, members, "latency_ms", "p50", colour, label)
    axes.set_xticks(list(position.values()), [_fmt(v) for v in position])
    # a case with a handful of frames has an interval as wide as its data: let it run off the top, not flatten the rest
    axes.set_ylim(0, 1.5 * max(c["latency_ms"]["p50"] for c in swept))
    axes.set(xlabel=param, ylabel="content latency p50 (ms)", title=f"Targets across {param}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    return _png(figure)


def _line_with_band(
    axes: plt.Axes, x: np.ndarray, cases: list[dict[str, Any]], family: str, stat: str, colour: str, label: str
) -> Any:
    """A percentile across the swept values, shaded between the ends of its 95 % CI where the summary has one."""
    stats = [c.get(family) or {} for c in cases]
    (line,) = axes.plot(x, [s.get(stat, np.nan) for s in stats], "o-", color=colour, label=label)
    bands = [s.get(f"{stat}_ci") or (np.nan, np.nan) for s in stats]
    axes.fill_between(x, [b[0] for b in bands], [b[1] for b in bands], color=colour, alpha=0.15, linewidth=0)
    return line


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _series_label(case: dict[str, Any], param: str) -> str:
    fixed = ", ".join(f"{k}={v}" for k, v in (case.get("params") or {}).items() if k != param)
    return " ".join(p for p in (f"{case.get('target')}/{case.get('transform')}", fixed) if p)


def latency_over_time(samples: pd.DataFrame, cases: list[str]) -> bytes:
    figure, axes = plt.subplots(figsize=(9, 4.5))
    for case in cases:
        frame = _shown(samples, case)
        if len(frame):
            axes.plot(frame["capture_s"], frame["latency_ms"], ".", markersize=2, label=case)
    axes.set(
        xlabel="capture time since start (s)",
        ylabel="content latency (ms)",
        title="Latency over time (a rise is a backlog)",
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, markerscale=4)
    return _png(figure)


def breakdown(samples: pd.DataFrame, cases: list[dict[str, Any]]) -> bytes | None:
    """Median per-frame stages and session set-up phases; a panel (and a case in it) only where a transport
    reports them, so WebRTC cases, which have no per-frame stages, leave no empty bars."""
    columns = [column for column in samples.columns if column.startswith("stage_")]
    stages = {
        c["case"]: {_label(column): _median(_shown(samples, c["case"])[column]) for column in columns} for c in cases
    }
    phases = {c["case"]: {_label(p): (c.get("setup_ms") or {}).get(p, np.nan) for p in PHASES} for c in cases}
    panels = [
        (draw, present)
        for draw, data in ((_stages_panel, stages), (_phases_panel, phases))
        if (present := _with_data(data))
    ]
    if not panels:
        return None
    height = 1.8 + 0.45 * max(len(data) for _, data in panels)
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels) + 1, height), squeeze=False)
    for axis, (draw, data) in zip(axes.flat, panels, strict=True):
        draw(axis, data)
    return _png(figure)


def _label(column: str) -> str:
    return column.removeprefix("stage_").removesuffix("_ms")


def _with_data(by_case: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Only the cases, and the labels, that have at least one number."""
    labels = {label for values in by_case.values() for label, value in values.items() if not np.isnan(value)}
    return {
        case: {label: value for label, value in values.items() if label in labels}
        for case, values in by_case.items()
        if any(not np.isnan(value) for value in values.values())
    }


def _stages_panel(axis: plt.Axes, stages: dict[str, dict[str, float]]) -> None:
    names = list(stages)
    left = np.zeros(len(names))
    for label in next(iter(stages.values())):
        widths = np.nan_to_num([stages[name][label] for name in names])
        axis.barh(range(len(names)), widths, left=left, label=label)
        left += widths
    axis.set_yticks(range(len(names)), names, fontsize=7)
    axis.invert_yaxis()
    axis.set(xlabel="ms (median per frame)", title="Per-frame stages")
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))


def _phases_panel(axis: plt.Axes, phases: dict[str, dict[str, float]]) -> None:
    """Set-up phases are moments, not durations: a marker per phase on each case's timeline."""
    names = list(phases)
    rows = np.arange(len(names))
    axis.hlines(rows, 0, [np.nanmax(list(phases[name].values())) for name in names], color="0.8", linewidth=2)
    for label, marker in zip(next(iter(phases.values())), "osD^vP", strict=False):
        axis.plot([phases[name][label] for name in names], rows, marker, linestyle="", markersize=7, label=label)
    axis.set_yticks(rows, names, fontsize=7)
    axis.invert_yaxis()
    axis.set_xlim(left=0)
    axis.set(xlabel="ms from the first request (median)", title="Session set-up")
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))


DELIVERY = (("fps", "output fps"), ("lost_ratio", "lost / dropped frames"), ("rejected", "rejected sessions"))


def delivery(cases: list[dict[str, Any]]) -> bytes:
    """Output fps always; losses and rejections only when some case has them (an all-zero panel says nothing)."""
    shown = [(key, title) for key, title in DELIVERY if key == "fps" or any(c.get(key) for c in cases)]
    absent = [title for key, title in DELIVERY if (key, title) not in shown]
    figure, axes = plt.subplots(1, len(shown), figsize=(4 + 3.5 * len(shown), 4), squeeze=False)
    names = [c["case"] for c in cases]
    for axis, (key, title) in zip(axes.flat, shown, strict=True):
        axis.bar(range(len(names)), [c.get(key) or 0 for c in cases], color="tab:blue")
        axis.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        axis.set_ylim(bottom=0)
        axis.set_title(title if key != "fps" or not absent else f"{title}\n(no {' and no '.join(absent)})")
        axis.grid(alpha=0.3, axis="y")
        if key == "lost_ratio":
            axis.yaxis.set_major_formatter(PercentFormatter(1.0))
        if key == "rejected":
            axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _png(figure)


STALL_FACTOR = 2.0  # a gap between outputs this many times the case's median gap reads as a stall


def stall_spans(times: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) of every gap between consecutive outputs over `STALL_FACTOR` times the median gap."""
    times = np.sort(np.asarray(times, dtype=float))
    if len(times) < 3:
        return []
    gaps = np.diff(times)
    limit = STALL_FACTOR * float(np.median(gaps))
    return [(float(start), float(start + gap)) for start, gap in zip(times[:-1], gaps, strict=True) if gap > limit]


def output_timeline(samples: pd.DataFrame, cases: list[str]) -> bytes | None:
    """When each output item arrived (or was presented), one row per case, stalls shaded on the time axis.

    A stall is a gap between consecutive outputs longer than `STALL_FACTOR` times the case's median
    gap: what a viewer sees as a freeze, whatever its cause.
    """
    rows = [(case, np.sort(_shown(samples, case)["recv_s"].dropna().to_numpy())) for case in cases]
    rows = [(case, times) for case, times in rows if len(times) > 1]
    if not rows:
        return None
    figure, axes = plt.subplots(figsize=(9, 1.2 + 0.55 * len(rows)))
    for index, (_, times) in enumerate(rows):
        for start, end in stall_spans(times):
            axes.axvspan(start, end, ymin=0, ymax=1, color="tab:red", alpha=0.08)
            axes.plot([start, end], [index, index], color="tab:red", linewidth=3)
        axes.plot(times, np.full(len(times), index), "|", color="tab:blue", markersize=9)
    axes.set_yticks(range(len(rows)), [case for case, _ in rows], fontsize=7)
    axes.invert_yaxis()
    axes.set(
        xlabel="time since start (s)",
        title=f"Output timeline: each tick an item shown; red = a gap over {STALL_FACTOR:g}x the median gap",
    )
    axes.grid(alpha=0.3, axis="x")
    return _png(figure)


VOICE_TURNS_SHOWN = 3
VOICE_EVENTS = (  # the voice client's consecutive spans from the end of speech, and the event each ends on
    ("stage_pause_wait_ms", "pause detected", "tab:orange"),
    ("stage_to_response_start_ms", "response starting", "tab:purple"),
)


def voice_turns(samples: pd.DataFrame, case: str, waveform: Any) -> bytes | None:
    """The first turns of a voice case on the microphone's waveform: end of speech, what the framework said
    (pause detected, response starting) and the first reply audio, on one time axis.

    `waveform(start_s, end_s)` returns the microphone's samples over that span (relative to the run's start)
    and their rate: the speech is deterministic, so the report redraws it instead of storing audio.
    """
    turns = samples[(samples["case"] == case) & (samples["repeat"] == 0) & samples["recv_s"].notna()]
    turns = turns.sort_values("capture_s").head(VOICE_TURNS_SHOWN)
    if not len(turns):
        return None
    start_s = max(0.0, float(turns["capture_s"].min()) - 3.0)
    end_s = float(turns["recv_s"].max()) + 0.5
    pcm, rate = waveform(start_s, end_s)
    figure, axes = plt.subplots(figsize=(10, 3.2))
    axes.plot(start_s + np.arange(len(pcm)) / rate, pcm / 32768, color="0.6", linewidth=0.4)
    drawn: set[str] = set()

    def mark(at: float, label: str, color: str, style: str = "-") -> None:
        axes.axvline(at, color=color, linestyle=style, linewidth=1.2, label=None if label in drawn else label)
        drawn.add(label)

    for turn in turns.itertuples(index=False):
        row = turn._asdict()
        mark(row["capture_s"], "end of speech", "black", "--")
        at = row["capture_s"]
        for column, label, color in VOICE_EVENTS:
            if column in row and not pd.isna(row[column]):
                at += row[column] / 1000
                mark(at, label, color)
        mark(row["recv_s"], "first reply audio", "tab:green")
        axes.annotate(
            f"{row['latency_ms']:.0f} ms",
            xy=(row["recv_s"], 0.9),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            ha="left",
        )
    axes.set(xlim=(start_s, end_s), ylim=(-1, 1), xlabel="time since start (s)", ylabel="microphone")
    axes.set_title(f"Voice turns of {case}: voice-to-voice = end of speech -> first reply audio", fontsize=9)
    axes.legend(fontsize=7, loc="lower left", ncols=4)
    return _png(figure)
