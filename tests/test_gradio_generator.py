"""Gradio generator outputs measured from yield to display, over raw SSE and gradio_client, on real servers."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gradio.utils import diff

from bench.clients.base import ClientConfig
from bench.clients.gradio_generator import (
    NO_STAMPS,
    GradioClientLibraryClient,
    GradioSSEClient,
    apply_diff,
)
from bench.launcher import RunningTarget, TargetCommand, launch
from bench.media.camera import VirtualCamera
from bench.records import ClientResult
from bench.runner import run_scenario
from bench.scenario import load_scenario

SSE_GRID_MS = 50  # Gradio's SSE loop sleeps this long whenever its message queue is empty (routes.py check_rate)


def run(tmp_path: Path, body: str, name: str = "generator") -> tuple[dict, pd.DataFrame]:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\n' + body)
    scenario, resolved = load_scenario(path)
    outcome = run_scenario(scenario, resolved, tmp_path / "runs")
    samples = outcome.path / "samples.parquet"  # written only when the run made samples
    return outcome.summary, pd.read_parquet(samples) if samples.exists() else pd.DataFrame()


def drive(client: object, target: RunningTarget, duration_s: float) -> ClientResult:
    camera = VirtualCamera(64, 64, 1)  # generated items: the camera only starts the case's clock

    async def go() -> ClientResult:
        camera.start()
        return await client.run(camera, ClientConfig(target.url, duration_s))

    return asyncio.run(go())


def test_diffs_rebuild_what_gradio_diffed():
    """Our diff application inverts the server's own `gradio.utils.diff` (the format of process_generating)."""
    steps = [
        [{"url": "a.webp", "size": None}, {"item": 0, "yield_s": 1.5}, "t0@1.0 "],
        [{"url": "b.webp", "size": 12}, {"item": 1, "yield_s": 2.5}, "t0@1.0 t1@2.0 "],
        [None, {"item": 2}, "reset"],
        [{"url": "c.webp", "orig": [1, 2, 3]}, [1, 2], "reset, then more"],
        [{"url": "c.webp", "orig": [1]}, [1, 2, 3, 4], ""],
        [{"url": "c.webp"}, [4], "a"],
    ]
    values = copy.deepcopy(steps[0])  # edits apply in place, as in Gradio's JS client
    for previous, current in itertools.pairwise(steps):
        values = [apply_diff(v, diff(p, c)) for v, p, c in zip(values, previous, current, strict=True)]
        assert values == current


def test_more_than_one_user_is_a_client_error_not_an_exception():
    camera = VirtualCamera(64, 64, 1)
    camera.start()
    result = asyncio.run(GradioSSEClient().run(camera, ClientConfig("http://127.0.0.1:9", 1.0, users=2)))
    assert result.client_errors and "one user" in result.client_errors[0]
    assert not result.receipts


@pytest.mark.slow
def test_both_clients_time_every_image_from_its_yield(tmp_path: Path):
    body = (
        "duration_s = 7\nwarmup_s = 2\n"
        '[[targets]]\nkind = "gradio-generator"\nshape = "images"\nclient = ["gradio-sse", "gradio-client"]\n'
        "item_interval_ms = 100\nsteps = 8\n"
    )
    summary, samples = run(tmp_path, body)
    assert len(summary["cases"]) == 2
    for case in summary["cases"]:
        metrics = case["stream_metrics"]
        assert case["status"] == "ok", (case["case"], case["status_reasons"])
        assert case["n"] >= 5, case["case"]
        assert metrics["wrong_ids"] == 0 and case["undecoded"] == 0, "every image showed the item its stamp names"
        assert metrics["unstamped_items"] == 0 and NO_STAMPS not in case["warnings"]
        assert metrics["first_item_ms"]["n"] >= 1 and metrics["inter_item_ms"]["n"] >= 4
        # a 512x512 WebP encode, an SSE hop and a download: well under 3 s even on a busy 2-core machine
        assert 0 < case["latency_ms"]["p50"] < 3000, case["case"]
    shown = samples[samples["status"] == "ok"]
    # yield stamps are the target's perf_counter, receipts ours: one CLOCK_MONOTONIC, so no item arrives early
    assert (shown["latency_ms"] > 0).all()
    sse = shown[shown["case"].str.contains("gradio-sse")]
    assert {"stage_fetch_ms", "stage_yield_to_event_ms"} <= set(sse.columns)
    split = sse["stage_yield_to_event_ms"] + sse["stage_fetch_ms"]
    assert np.allclose(split, sse["latency_ms"]), "yield -> SSE message -> image decoded adds up"


def _tokens_target(delay_ms: int, log: Path) -> contextlib.AbstractContextManager[RunningTarget]:
    argv = [sys.executable, "-m", "targets.gradio_generator", "--port", "{port}", "--shape", "tokens"]
    argv += ["--item-interval-ms", "100", "--steps", "20", "--delay-ms", str(delay_ms)]
    return launch(TargetCommand(argv, ready_path="/config"), log)


@pytest.fixture(scope="module")
def token_targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningTarget, RunningTarget]]:
    logs = tmp_path_factory.mktemp("tokens")
    with _tokens_target(0, logs / "d0.log") as plain, _tokens_target(200, logs / "d200.log") as delayed:
        yield plain, delayed


@pytest.mark.slow
def test_injected_gap_between_yields_is_recovered_at_the_client(token_targets: tuple[RunningTarget, RunningTarget]):
    """delay_ms 200 against 0, both driven at once so machine load hits them alike."""
    camera = VirtualCamera(64, 64, 1)

    async def both() -> list[ClientResult]:
        camera.start()
        configs = [ClientConfig(t.url, 9.0) for t in token_targets]
        return await asyncio.gather(*(GradioSSEClient().run(camera, c) for c in configs))

    plain, delayed = asyncio.run(both())
    for result in (plain, delayed):
        assert not result.errors and not result.client_errors
        assert len(result.metrics["inter_item_ms"]) >= 10
        assert all(r.sample_id in result.origin_times for r in result.receipts)
    # the app's own step overhead (thread wake-up, postprocess) moved its p50 by 0.5-2.5 ms under load
    yielded = np.median(delayed.metrics["yield_interval_ms"]) - np.median(plain.metrics["yield_interval_ms"])
    assert yielded == pytest.approx(200, abs=8), "the app paced its yields as asked"
    # Items leave Gradio's SSE loop only when it polls its queue: every SSE_GRID_MS plus the sleep's overshoot
    # (1-4 ms per poll on a busy machine), so a client's gaps are whole numbers of polls and 200 ms more is
    # 4 polls: measured 202-210 ms. The client adds nothing of its own beyond that (tokens need no download).
    shown = np.median(delayed.metrics["inter_item_ms"]) - np.median(plain.metrics["inter_item_ms"])
    assert 200 - 5 <= shown <= 200 + 4 * 5, shown


@pytest.mark.slow
def test_tokens_arrive_through_gradio_client_with_their_stamps(token_targets: tuple[RunningTarget, RunningTarget]):
    result = drive(GradioClientLibraryClient(), token_targets[0], 5.0)
    assert not result.errors and not result.client_errors
    assert len(result.receipts) >= 10
    latencies = [(r.recv_s - result.origin_times[r.sample_id]) * 1000 for r in result.receipts]
    assert min(latencies) > 0 and np.median(latencies) < 1000
    # the app yields every ~100 ms; the library reads its event stream every 50 ms and its outputs every 1 ms
    assert np.median(result.metrics["inter_item_ms"]) == pytest.approx(100, abs=SSE_GRID_MS)
    assert result.sessions[0].phases_ms["connect_ms"] > 0
