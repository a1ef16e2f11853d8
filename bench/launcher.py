"""Start a target in its own process group on a free 127.0.0.1 port, and always stop it.

The target never outlives the harness: it gets its own session (so a terminal
Ctrl-C reaches only us and we stop it in order), SIGTERM then SIGKILL of the
whole group on stop, a parent-death signal in case the harness is killed
outright, and an atexit net for anything still running.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.errors import TargetError

LOOPBACK = "127.0.0.1"
LOOPBACK_SITE = Path(__file__).resolve().parent / "loopback_site"
TARGET_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "STREAMBENCH_LOOPBACK_ICE": "1",
    "STREAMBENCH_OFFLINE_VAD": "1",  # fastrtc's ReplyOnPause gets our offline VAD (loopback_site/sitecustomize.py)
    "GRADIO_SERVER_NAME": LOOPBACK,
    "PYTHONUNBUFFERED": "1",
}
NOTE_PREFIX = "streambench: "  # how the injected code (loopback_site, bench.app_host) says what it changed in an app
# huggingface_hub / transformers refusing a download offline; a network error raised inside a download call
_HUB_OFFLINE = re.compile(
    r"LocalEntryNotFoundError|OfflineModeIsEnabled|offline mode is enabled|local_files_only"
    r"|couldn't connect to 'https://huggingface\.co'|cannot find the requested files in the (?:local|disk) cache",
    re.IGNORECASE,
)
_NO_NETWORK = re.compile(
    r"URLError|Name or service not known|Temporary failure in name resolution|Network is unreachable"
)
_DOWNLOAD_CALL = re.compile(r"download|urlretrieve|torch[/\\.]hub")
# what the app asked for: the name it passed to a download call, else a URL with a path (not a docs link)
_FETCH_CALL = re.compile(
    r"""(?:hf_hub_download|snapshot_download|from_pretrained|urlretrieve|load_state_dict_from_url|hub\.load)"""
    r"""\(\s*(?:repo_id\s*=\s*)?["']([^"']+)["']"""
)
_FETCH_URL = re.compile(r"""https?://(?!huggingface\.co/docs)[^\s/'"<>]+/[^\s'"<>)]+""")
_running: set[RunningTarget] = set()


@dataclass
class TargetCommand:
    """How to start one target: "{port}" in any argv item is replaced by the chosen port."""

    argv: list[str]
    ready_path: str = "/health"
    ready_timeout_s: float = 60.0
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


class RunningTarget:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.url = f"http://{LOOPBACK}:{port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after `grace_s`.

        SIGCONT follows the SIGTERM: a stopped (hung, SIGSTOPped) process keeps a SIGTERM
        pending until it runs again, so without it a hung target would sit out the whole grace.
        """
        _running.discard(self)
        for signals, wait_s in (((signal.SIGTERM, signal.SIGCONT), grace_s), ((signal.SIGKILL,), 5.0)):
            for sig in signals:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=wait_s)
            if not _group_alive(self.process.pid):
                return

    def __enter__(self) -> RunningTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def app_command(script: Path, ready_path: str | None = None) -> TargetCommand:
    """A user's script, started through `bench.app_host`: whatever server it starts binds 127.0.0.1 on our port."""
    argv = [sys.executable, "-m", "bench.app_host", str(script), "--port", "{port}"]
    return TargetCommand(argv, ready_path=ready_path or "/", cwd=script.parent)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def target_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every target gets: offline Gradio, loopback-only ICE, fastrtc's VAD offline."""
    env = dict(os.environ)
    env.update(TARGET_ENV)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(LOOPBACK_SITE), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def launch(command: TargetCommand, log_path: Path) -> RunningTarget:
    """Start the target and wait until `ready_path` answers (any status below 500); raise TargetError otherwise."""
    port = free_port()
    argv = [arg.replace("{port}", str(port)) for arg in command.argv]
    env = target_env({k: v.replace("{port}", str(port)) for k, v in command.env.items()})
    env.setdefault("GRADIO_SERVER_PORT", str(port))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        try:
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=command.cwd,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            raise TargetError(f"cannot start {argv[0]}: {exc}") from exc
    target = RunningTarget(process, port, log_path)
    _running.add(target)
    try:
        _wait_ready(target, command)
    except BaseException:
        target.stop()
        raise
    return target


def injected_notes(log_path: Path) -> list[str]:
    """What streambench changed inside the app, as the app logged it (e.g. fastrtc's VAD replaced), once each.

    The run summary states these: a measurement of an app we patched must say what was patched.
    """
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return list(dict.fromkeys(line.strip() for line in lines if line.startswith(NOTE_PREFIX)))


def offline_download_error(log: str) -> str | None:
    """One line for an app that died downloading a model offline (its log holds the traceback), else None."""
    if not (_HUB_OFFLINE.search(log) or (_NO_NETWORK.search(log) and _DOWNLOAD_CALL.search(log))):
        return None
    call, url = _FETCH_CALL.search(log), _FETCH_URL.search(log)
    fetched = call.group(1) if call else url.group().rstrip(":.,;") if url else None
    return (
        f"the app tried to download a model at start{f' ({fetched})' if fetched else ''} and streambench runs "
        "targets offline (HF_HUB_OFFLINE=1): ship the model with the app or pre-download it"
    )


def _wait_ready(target: RunningTarget, command: TargetCommand) -> None:
    deadline = time.monotonic() + command.ready_timeout_s
    url = target.url + command.ready_path
    while time.monotonic() < deadline:
        if not target.alive():
            raise TargetError(_exit_before_ready(target))
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.1)
    raise TargetError(
        f"target not ready at {url} after {command.ready_timeout_s:.0f} s "
        f"(log {target.log_path}): {_log_tail(target.log_path)}"
    )


def _exit_before_ready(target: RunningTarget) -> str:
    """Why the target died: one line if it was a download refused offline, else its log's last lines."""
    code, log = target.process.returncode, target.log_path
    try:
        offline = offline_download_error(log.read_text(errors="replace"))
    except OSError:
        offline = None
    if offline:
        return f"target exited with code {code} before it was ready: {offline} (log {log})"
    return f"target exited with code {code} before it was ready (log {log}): {_log_tail(log)}"


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_parent() -> None:
    """Linux PR_SET_PDEATHSIG: the target gets SIGTERM if the harness dies without cleaning up."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


@atexit.register
def _stop_all() -> None:
    for target in list(_running):
        target.stop(grace_s=2.0)
