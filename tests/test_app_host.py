"""Users' scripts, written as their guides write them, start through bench.app_host on our loopback port, offline."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.app_host import NOTHING_TO_SERVE
from bench.errors import TargetError
from bench.launcher import NOTE_PREFIX, RunningTarget, app_command, injected_notes, launch, target_env

APPS = Path(__file__).parent / "apps"
GUIDE_PORT = 7860  # what every guide app asks for
OFFLINE_VAD_NOTE = "streambench: fastrtc's VAD model replaced by the harness's offline silero v5 adapter"


def listening(target: RunningTarget) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket listening in the target's process group, from /proc."""
    inodes = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2]) != target.pid:  # field 5: pgrp
                continue
            fds = list((proc / "fd").iterdir())
        except (OSError, ValueError):
            continue
        for fd in fds:  # a busy server closes some of its descriptors while we read: skip those, not the process
            with contextlib.suppress(OSError):
                link = str(fd.readlink())
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # host-order 32-bit words
                found.add((socket.inet_ntop(family, words), int(port, 16)))
    return found


def assert_serves_only_our_loopback_port(target: RunningTarget) -> None:
    sockets = listening(target)
    assert sockets == {("127.0.0.1", target.port)}, f"nothing on 0.0.0.0 or {GUIDE_PORT}: {sockets}"


@pytest.fixture(scope="module")
def guide_echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTarget]:
    with launch(app_command(APPS / "guide_reply_on_pause.py"), tmp_path_factory.mktemp("echo") / "t.log") as target:
        yield target


def test_uvicorn_run_on_all_interfaces_serves_on_our_loopback_port_only(guide_echo: RunningTarget):
    assert_serves_only_our_loopback_port(guide_echo)
    routes = httpx.get(f"{guide_echo.url}/openapi.json").json()["paths"]
    assert "/webrtc/offer" in routes, "the Stream mounted on the script's FastAPI app is what answers"
    assert f"{NOTE_PREFIX}uvicorn asked for 0.0.0.0:{GUIDE_PORT}, serving on 127.0.0.1:{guide_echo.port}" in (
        injected_notes(guide_echo.log_path)
    )


def test_guide_reply_on_pause_starts_offline_with_the_injected_vad_and_the_run_can_say_so(guide_echo: RunningTarget):
    """HF_HUB_OFFLINE=1: fastrtc's own getter would have died downloading its model; ours was used instead."""
    assert target_env()["HF_HUB_OFFLINE"] == "1"
    assert OFFLINE_VAD_NOTE in injected_notes(guide_echo.log_path)


def test_without_the_injected_vad_the_guide_echo_dies_offline_in_one_line(tmp_path: Path):
    """Why the injection exists: fastrtc's own getter downloads its VAD from the hub at start."""
    command = app_command(APPS / "guide_reply_on_pause.py")
    command.env["STREAMBENCH_OFFLINE_VAD"] = "0"
    with pytest.raises(TargetError, match=r"download a model at start \(\S*/silero-vad\S*\) and") as raised:
        launch(command, tmp_path / "t.log")
    assert "\n" not in str(raised.value)


def test_a_fastapi_app_meant_for_the_uvicorn_command_is_served(tmp_path: Path):
    with launch(app_command(APPS / "guide_fastrtc_mount_flip.py"), tmp_path / "t.log") as target:
        assert_serves_only_our_loopback_port(target)
        assert httpx.get(f"{target.url}/").status_code == 404, "no root route: ready all the same (< 500)"
        assert "/webrtc/offer" in httpx.get(f"{target.url}/openapi.json").json()["paths"]
        notes = injected_notes(target.log_path)
    assert notes == [f"{NOTE_PREFIX}guide_fastrtc_mount_flip.py started no server: serving its `app` (FastAPI)"]


@pytest.mark.parametrize(
    ("source", "served"),
    [
        ("import gradio as gr\ndemo = gr.Interface(lambda x: x, 'image', 'image')\n", "`demo` (Interface)"),
        (
            "from fastrtc import Stream\nstream = Stream(handler=lambda f: f, modality='video', mode='send-receive')\n",
            "`stream` (Stream)",
        ),
    ],
    ids=["blocks", "fastrtc-stream"],
)
def test_a_blocks_or_stream_the_script_only_defines_is_launched(tmp_path: Path, source: str, served: str):
    script = tmp_path / "defines_only.py"
    script.write_text(source)
    with launch(app_command(script), tmp_path / "t.log") as target:
        assert_serves_only_our_loopback_port(target)
        assert httpx.get(f"{target.url}/config").status_code == 200, "a Gradio page answers"
        notes = injected_notes(target.log_path)
    assert notes == [f"{NOTE_PREFIX}defines_only.py started no server: serving its {served}"]


def test_gradio_launch_with_its_own_address_serves_on_our_loopback_port_only(tmp_path: Path):
    with launch(app_command(APPS / "guide_gradio_explicit_port.py"), tmp_path / "t.log") as target:
        assert_serves_only_our_loopback_port(target)
        assert httpx.get(f"{target.url}/config").json()["dependencies"], "the app's .stream() event is served"
        notes = injected_notes(target.log_path)
    assert notes == [f"{NOTE_PREFIX}gradio launch() asked for 0.0.0.0:{GUIDE_PORT}, serving on 127.0.0.1:{target.port}"]


def test_a_script_with_nothing_to_serve_exits_3_with_one_line(tmp_path: Path):
    script = APPS / "nothing_to_serve.py"
    with pytest.raises(TargetError, match=f"exited with code {NOTHING_TO_SERVE}") as raised:
        launch(app_command(script), tmp_path / "t.log")
    stderr = [line for line in (tmp_path / "t.log").read_text().splitlines() if "median" not in line]
    assert stderr == [
        f"{script}: started no server and defines nothing to serve "
        "(looked for a FastAPI/Starlette app, a gradio Blocks or a fastrtc Stream)"
    ]
    assert stderr[0] in str(raised.value)


def test_hosting_imports_no_server_library_the_script_does_not(tmp_path: Path):
    """The patches wait for the script's own imports: a plain script must not pay for Gradio."""
    script = tmp_path / "plain.py"
    script.write_text("import sys\nprint(sorted({'gradio', 'uvicorn', 'fastrtc'} & set(sys.modules)))\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench.app_host", str(script), "--port", "1"],
        env=target_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (NOTHING_TO_SERVE, "[]\n"), done.stderr


def test_an_app_that_downloads_a_model_at_start_fails_in_one_line(tmp_path: Path):
    with pytest.raises(TargetError) as raised:
        launch(app_command(APPS / "guide_downloads_a_model.py"), tmp_path / "t.log")
    message = str(raised.value)
    assert "Traceback" not in message and "\n" not in message
    assert (
        "the app tried to download a model at start (streambench-test/tiny-denoiser) and streambench runs targets "
        "offline (HF_HUB_OFFLINE=1): ship the model with the app or pre-download it"
    ) in message
