"""Shared helpers: run the CLI as a user would, and find processes a run left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 240):
    """`python -m bench ...` in a subprocess: exit code and output exactly as a user sees them."""
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def processes_with_token(token: str) -> list[int]:
    """Live processes whose environment carries `token` (children inherit it from the run)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if f"STREAMBENCH_TEST_TOKEN={token}".encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def drive_then_kill(client, camera, target, kill_after_s: float, transform: str = "flip"):
    """Run `client` for 8 s against `target`, SIGKILLing the target's process group `kill_after_s` in."""
    from bench.clients.base import ClientConfig

    async def go():
        camera.start()
        run = asyncio.create_task(client.run(camera, ClientConfig(target.url, 8.0, 1, transform)))
        await asyncio.sleep(kill_after_s)
        os.killpg(target.pid, signal.SIGKILL)
        return await run

    return asyncio.run(go())


def a_second_webrtc_user_while_the_first_streams(url: str, camera, second_s: float):
    """The first user streams 3 s; 1.5 s in (connected by then), a second offers for `second_s`: both results."""
    from bench.clients.base import ClientConfig
    from bench.clients.webrtc import WebRTCClient

    async def go():
        camera.start()
        first = asyncio.create_task(WebRTCClient().run(camera, ClientConfig(url, 3.0, 1, "flip")))
        await asyncio.sleep(1.5)  # the first connects in ~0.2-0.3 s
        second = await WebRTCClient().run(camera, ClientConfig(url, second_s, 1, "flip"))
        return await first, second

    first, second = asyncio.run(go())
    assert [s.status for s in first.sessions] == ["ok"], first.errors
    assert first.sessions[0].phases_ms["connected_ms"] < 1500, "the first was connected when the second offered"
    assert first.receipts
    assert [(s.status, s.error) for s in second.sessions] == [("rejected", "concurrency_limit_reached")]
    assert second.errors == [] and not second.receipts


def breaks_after(function, calls: int):
    """`function`, but raising ValueError from call `calls` + 1 on: a bug in the harness's own code."""
    count = 0

    def broken(*args, **kwargs):
        nonlocal count
        count += 1
        if count > calls:
            raise ValueError("marker decoder broke")
        return function(*args, **kwargs)

    return broken


@pytest.fixture
def process_token(monkeypatch: pytest.MonkeyPatch) -> str:
    """A unique token in this test's environment, inherited by every process it starts."""
    token = uuid.uuid4().hex
    monkeypatch.setenv("STREAMBENCH_TEST_TOKEN", token)
    return token
