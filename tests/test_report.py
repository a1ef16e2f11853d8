"""Reports from a real multi-target run: every plot, escaped names, real Chromium renders it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.report import render_report, swept_params
from bench.runner import run_scenario
from bench.scenario import load_scenario
from bench.store import load_run
from tests.conftest import run_cli

# end-to-end runs of real servers: part of the full suite, left out of the quick `-m "not slow"` loop
pytestmark = pytest.mark.slow


EVIL = "<script>alert(1)</script>"
SCENARIO = f"""name = "report {EVIL}"
duration_s = 4
warmup_s = 1
[source]
width = 320
height = 240
fps = 15
[[targets]]
kind = "fastrtc-webrtc"
transform = "flip"
[[targets]]
kind = "gradio-stream"
transform = "flip"
stream_every = [0.1, 0.5]
[[targets]]
kind = "aiortc-echo"
name = "{EVIL}"
[[claims]]
target = "fastrtc-webrtc"
metric = "latency_ms.p95"
op = "<"
value = 500
"""
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.fixture(scope="module")
def multi_target_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    path = root / "report.toml"
    path.write_text(SCENARIO)
    scenario, resolved = load_scenario(path)
    return run_scenario(scenario, resolved, root / "runs").path


@pytest.fixture(scope="module")
def report(multi_target_run: Path, tmp_path_factory: pytest.TempPathFactory):
    started = time.perf_counter()
    paths = render_report(load_run(multi_target_run), tmp_path_factory.mktemp("out"))
    return paths, time.perf_counter() - started


def test_report_has_every_plot(report):
    paths, _ = report
    names = {p.stem for p in paths.plots}
    assert {"latency_cdf", "latency_vs_stream_every", "latency_over_time", "breakdown", "delivery"} <= names
    page = paths.html.read_text()
    assert page.count("data:image/png;base64,") == len(paths.plots), "images are embedded: one self-contained file"
    assert "Claims" in page and "pass" in page
    assert "Notes" in page and "one frame interval" in page, "known framework behaviour is explained in the report"


def test_names_are_escaped_never_executed(report):
    paths, _ = report
    page = paths.html.read_text()
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()


def test_report_renders_quickly(report):
    _, seconds = report
    # the bound is 10 s for a 20 s run; this run is shorter, so this is a generous ceiling
    assert seconds < 10


def test_report_opens_in_real_chromium_without_console_errors(report, tmp_path: Path):
    paths, _ = report
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [
            "chromium",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            paths.html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[0] >= 1000
    not_white = (image < 240).any(axis=2).mean()
    colours = len(np.unique(image.reshape(-1, 3), axis=0))
    # text, tables and line plots on white cover ~5 % of the page; a blank page covers 0
    assert not_white > 0.02 and colours > 50, "the page shows tables and plots, not a blank canvas"


def test_markdown_fits_a_pr_comment(report):
    paths, _ = report
    text = paths.markdown.read_text()
    assert "| case | status | n | p50 ms [95% CI]" in text
    assert "gradio-stream/flip/stream_every=0.5" in text and "### Claims" in text


def test_swept_params_are_found(multi_target_run: Path):
    assert swept_params(load_run(multi_target_run).summary["cases"]) == ["stream_every"]


def test_cli_report_and_compare(multi_target_run: Path, tmp_path: Path):
    result = run_cli("report", str(multi_target_run), "--out", str(tmp_path / "r"))
    assert result.returncode == 0 and (tmp_path / "r" / "index.html").exists()
    same = run_cli("compare", str(multi_target_run), str(multi_target_run), "--html", str(tmp_path / "c"))
    assert same.returncode == 0
    # a run against itself changes nothing (the stream_every=0.5 case has too few frames to judge)
    assert "worse" not in same.stdout and "better" not in same.stdout
    assert same.stdout.count("| no change |") >= 3, same.stdout
    assert list((tmp_path / "c").glob("*/compare.html"))
