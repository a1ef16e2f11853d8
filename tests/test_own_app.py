"""A user's own app, measured in one command: apps written like the guides' examples, each by --app and --url.

Every app here is a plain script with nothing streambench-specific; what each test expects comes
from the app itself (its flip shows as an upside-down marker, its dropdown changes what it does,
its handler that never runs returns the camera unchanged), not from the harness's code.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.discovery import discover
from bench.launcher import RunningTarget, app_command, launch
from bench.own_app import plan_own_app
from bench.runner import run_scenario

APPS = Path(__file__).parent / "apps"
pytestmark = pytest.mark.slow


def measure(tmp_path: Path, *, app: Path | None = None, url: str | None = None, **options: Any) -> dict[str, Any]:
    """What `bench run --app/--url` does, through the library: read the app, build its scenario, run it."""
    plan = plan_own_app(app, url, log_dir=tmp_path, **options)
    result = run_scenario(plan.scenario, plan.scenario_path, tmp_path / "runs", already_running=plan.started)
    assert not any(target.alive() for target in plan.started.values()), "the app is stopped with its case"
    [case] = result.summary["cases"]
    return case


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Start an app as its user would before giving --url; every app started is stopped with the module."""
    started: dict[str, RunningTarget] = {}

    def start(script: str) -> str:
        if script not in started:
            log = tmp_path_factory.mktemp("apps") / f"{script}.log"
            started[script] = launch(app_command(APPS / script), log)
        return started[script].url

    yield start
    for target in started.values():
        target.stop()


def dominant(orientations: dict[str, int]) -> str:
    return max(orientations, key=orientations.get) if orientations else "none"


def test_a_webcam_app_with_a_dropdown_is_measured_by_url_and_its_dropdown_set_by_label(tmp_path: Path, running):
    url = running("guide_webcam_app.py")
    as_is = measure(tmp_path / "default", url=url, duration_s=3)
    assert as_is["n"] > 5 and dominant(as_is["orientations"]) == "flip_ud", as_is  # the dropdown's default: flip
    edges = measure(
        tmp_path / "edges", app=APPS / "guide_webcam_app.py", duration_s=3, inputs={"Transformation": "edges"}
    )
    # Canny edges keep the marker upright: the app did what its dropdown said, not its default flip
    assert edges["n"] > 5 and dominant(edges["orientations"]) == "identity", edges


def test_the_unified_webcam_image_is_measured(tmp_path: Path):
    """By --app; the --url path of a Gradio .stream() app is the dropdown app's test."""
    case = measure(tmp_path, app=APPS / "guide_unified_webcam.py", duration_s=4)
    # no stream_every in the app: Gradio's default 0.5 s, so about two outputs a second
    assert case["kind"] == "gradio-stream" and case["n"] >= 3, case
    assert dominant(case["orientations"]) == "flip_ud", case


def test_a_fastrtc_stream_ui_launch_flip_is_measured_through_its_gradio_page(tmp_path: Path):
    """By --app; our client on the same app by its URL is tests/test_fastrtc_ui.py's."""
    where = {"app": APPS / "guide_fastrtc_ui_flip.py"}
    case = measure(tmp_path, duration_s=3, **where)
    assert case["kind"] == "fastrtc-webrtc" and case["n"] > 30, case
    assert dominant(case["orientations"]) == "flip_ud", case


@pytest.mark.parametrize("way", ["app", "url"])
def test_a_fastrtc_flip_mounted_on_fastapi_is_flagged_because_its_handler_never_runs(tmp_path: Path, running, way: str):
    """FastRTC calls a plain video handler only after set_input, which nothing calls when mounted: the camera
    comes back as sent (docs/PROTOCOLS.md), and the run must say so for an app it has never seen."""
    script = "guide_fastrtc_mount_flip.py"
    where = {"app": APPS / script} if way == "app" else {"url": running(script)}
    case = measure(tmp_path, duration_s=3, **where)
    assert case["kind"] == "fastrtc-webrtc" and case["n"] > 30, case
    assert dominant(case["orientations"]) == "identity", "the flip did not run: markers read upright"
    assert case["status"] == "degraded" and any("input unchanged" in r for r in case["status_reasons"]), case


def test_the_guide_reply_on_pause_echo_is_measured_offline_as_voice_turns(tmp_path: Path):
    case = measure(tmp_path, app=APPS / "guide_reply_on_pause.py", duration_s=12)
    assert case["kind"] == "fastrtc-voice" and case["n"] >= 2, case  # replies heard, each a voice-to-voice time
    assert any("offline silero" in note for note in case["notes"]), case["notes"]


def test_the_fake_diffusion_generator_is_timed_by_arrival(tmp_path: Path, running):
    """By --url (the user started it); `bench run --app` of a Gradio app is the other tests'."""
    case = measure(tmp_path, url=running("guide_fake_diffusion.py"), duration_s=4)
    # the guide's generator sleeps 1 s before each of its 3 noisy images: items arrive, timed from the click
    assert case["kind"] == "gradio-generator" and case["status"] == "ok", case
    metrics = case["stream_metrics"]
    assert metrics["unstamped_items"] >= 2 and 900 < metrics["first_item_ms"]["p50"] < 3000, metrics


def test_an_app_without_a_streaming_event_gets_one_line_listing_what_it_has(tmp_path: Path):
    done = bench("run", "--app", str(APPS / "guide_no_stream.py"), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "no streaming event" in line and "/sepia" in line, line


def test_an_app_that_crashes_on_start_gets_one_line_and_exit_3(tmp_path: Path):
    done = bench("run", "--app", str(APPS / "crashing_app.py"), cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "cannot load the model" in line, line


def test_a_url_where_nothing_listens_gets_one_line_and_exit_2(tmp_path: Path):
    done = bench("inspect", "--url", "http://127.0.0.1:9", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert "nothing answers at http://127.0.0.1:9" in done.stderr


def test_inspect_lists_the_event_and_the_way_it_would_be_driven(running):
    info = discover(running("guide_webcam_app.py"))
    [endpoint] = info.endpoints
    assert endpoint.kind == "gradio-stream" and "Transformation" in endpoint.labels


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )
