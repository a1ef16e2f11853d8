"""Matplotlib figures of a run, as PNG bytes. Reads numbers; computes no statistics beyond plotting."""

from __future__ import annotations

import io
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use("Agg"): no display here

PHASES = ("offer_ms", "ice_connected_ms", "connected_ms", "first_frame_ms", "queue_wait_ms", "first_output_ms")


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def _shown(samples: pd.DataFrame, case: str) -> pd.DataFrame:
    frame = samples[(samples["case"] == case) & (~samples["warmup"]) & (samples["status"] == "ok")]
    return frame.sort_values("capture_s")


def _median(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.median()) if len(values) else 0.0


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


def latency_vs_param(samples: pd.DataFrame, cases: list[dict[str, Any]], param: str) -> bytes:
    """Box per value of `param` (per target), output fps on a second axis."""
    rows = sorted((c for c in cases if param in c["params"]), key=lambda c: (c["target"], c["params"][param]))
    figure, axes = plt.subplots(figsize=(9, 4.5))
    data = [_shown(samples, c["case"])["latency_ms"].to_numpy() for c in rows]
    positions = np.arange(len(rows))
    axes.boxplot([d if len(d) else [np.nan] for d in data], positions=positions, widths=0.5, showfliers=False)
    axes.set_xticks(positions, [f"{c['target']}\n{param}={c['params'][param]:g}" for c in rows], fontsize=7)
    axes.set(ylabel="content latency (ms)", title=f"Latency vs {param}")
    axes.grid(alpha=0.3, axis="y")
    fps_axis = axes.twinx()
    fps_axis.plot(positions, [c["fps"] for c in rows], "o--", color="tab:orange", label="output fps")
    fps_axis.set_ylabel("output fps", color="tab:orange")
    event = [((c.get("event_latency_ms") or {}).get("p50")) for c in rows]
    if any(e is not None for e in event):
        axes.plot(positions, [np.nan if e is None else e for e in event], "s:", color="tab:green", label="event p50")
        axes.legend(fontsize=7, loc="upper left")
    return _png(figure)


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
    """Median per-frame stages (stacked) and set-up phases, where a transport reports them."""
    stage_columns = [c for c in samples.columns if c.startswith("stage_")]
    has_phases = any(c.get("setup_ms") for c in cases)
    if not stage_columns and not has_phases:
        return None
    figure, (stages_axis, phases_axis) = plt.subplots(1, 2, figsize=(11, 4.5))
    names = [c["case"] for c in cases]
    bottom = np.zeros(len(cases))
    for column in stage_columns:
        medians = np.array([_median(_shown(samples, name)[column]) for name in names])
        label = column.removeprefix("stage_").removesuffix("_ms")
        stages_axis.bar(range(len(names)), medians, bottom=bottom, label=label)
        bottom += medians
    stages_axis.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
    stages_axis.set(ylabel="ms (median)", title="Per-frame stages")
    if stage_columns:
        stages_axis.legend(fontsize=7)
    width = 0.8 / len(PHASES)
    for index, phase in enumerate(PHASES):
        values = [(c.get("setup_ms") or {}).get(phase, np.nan) for c in cases]
        if not all(np.isnan(v) for v in values):
            phases_axis.bar(np.arange(len(names)) + index * width, values, width, label=phase)
    phases_axis.set_xticks(np.arange(len(names)) + 0.4, names, rotation=30, ha="right", fontsize=7)
    phases_axis.set(ylabel="ms from the first request", title="Session set-up")
    phases_axis.legend(fontsize=7)
    return _png(figure)


def delivery(cases: list[dict[str, Any]]) -> bytes:
    figure, axes = plt.subplots(1, 3, figsize=(11, 4))
    names = [c["case"] for c in cases]
    for axis, (key, title) in zip(
        axes,
        (("fps", "output fps"), ("lost_ratio", "lost / dropped ratio"), ("rejected", "rejected sessions")),
        strict=True,
    ):
        axis.bar(range(len(names)), [c.get(key) or 0 for c in cases], color="tab:blue")
        axis.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        axis.set_title(title)
        axis.grid(alpha=0.3, axis="y")
    return _png(figure)
