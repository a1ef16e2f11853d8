"""Gradio `.stream()` microphone events, recorded and sent the way the browser does, against the real target."""

from __future__ import annotations

import asyncio
import math
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bench.clients.base import ClientConfig
from bench.clients.gradio_mic import GradioMicClient, chunk_samples
from bench.launcher import TargetCommand, launch
from bench.media.audio_marker import MARKER_S
from bench.media.microphone import VirtualMicrophone
from bench.records import ClientResult
from bench.runner import run_scenario
from bench.scenario import load_scenario

# end-to-end runs of real servers: part of the full suite, left out of the quick `-m "not slow"` loop
pytestmark = pytest.mark.slow

STREAM_EVERY = 0.5
DURATION_S = 6.0
Recorded = tuple[ClientResult, VirtualMicrophone, Path]


def frontend_wav_header(sample_rate: int, channels: int) -> bytes:
    """The header Gradio's frontend sends, transcribed call by call from the WAV encoder it ships
    (extendable-media-recorder-wav-encoder-worker, inlined in gradio/templates/frontend/assets/module-*.js):
    16-bit PCM, sizes of an endless recording (`Math.min(n * r * s, 4294967251)` with n = Infinity)."""
    size = min(math.inf, 4294967251)
    view = bytearray(44)
    struct.pack_into(">I", view, 0, 1380533830)  # "RIFF", written big-endian
    struct.pack_into("<I", view, 4, int(size) + 36)
    struct.pack_into(">I", view, 8, 1463899717)  # "WAVE"
    struct.pack_into(">I", view, 12, 1718449184)  # "fmt "
    struct.pack_into("<IHHIIHH", view, 16, 16, 1, channels, sample_rate, sample_rate * channels * 2, channels * 2, 16)
    struct.pack_into(">I", view, 36, 1684108385)  # "data"
    struct.pack_into("<I", view, 40, int(size))
    return bytes(view)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """One user recording for DURATION_S into a fresh target; the files it uploaded land in `uploads`."""
    root = tmp_path_factory.mktemp("mic")
    uploads = root / "uploads"
    argv = [sys.executable, "-m", "targets.gradio_mic", "--port", "{port}", "--stream-every", str(STREAM_EVERY)]
    command = TargetCommand(argv, ready_path="/config", env={"GRADIO_TEMP_DIR": str(uploads)})
    with launch(command, root / "app.log") as target:
        mic = VirtualMicrophone(markers_per_s=5.0)

        async def go() -> ClientResult:
            mic.start()
            return await GradioMicClient().run(mic, ClientConfig(target.url, DURATION_S))

        yield asyncio.run(go()), mic, uploads


def test_markers_come_back_in_the_transcript_with_no_wrong_id(recorded: Recorded):
    result, mic, _ = recorded
    assert [s.status for s in result.sessions] == ["ok"], result.errors
    assert result.app_settings["stream_every"] == STREAM_EVERY, "read from the app's /config, as the browser does"
    sent = {s.sample_id for s in result.sends}
    shown = [r.sample_id for r in result.receipts]
    assert result.metrics["wrong_marker_ids"] == 0 and set(shown) <= sent
    assert len(shown) == len(set(shown)), "a marker is received once: when the transcript first shows it"
    # all but a marker split over the last sent chunk and the next (never sent) one come back; the chunks sent
    # cover the run but for the last partial chunk and the client's start-up (5 markers a second)
    assert len(shown) >= len(sent) - 1 >= 5 * (DURATION_S - 2 * STREAM_EVERY) - 2
    for receipt in result.receipts:
        stages = receipt.stages_ms
        latency_ms = (receipt.recv_s - mic.capture_time(receipt.sample_id)) * 1000
        # the stages are consecutive: capture -> chunk upload starts -> uploaded -> sent -> transcript shows it
        assert sum(stages.values()) == pytest.approx(latency_ms, abs=5)


def test_each_send_is_the_wav_file_the_frontend_uploads(recorded: Recorded):
    result, mic, uploads = recorded
    files = sorted(uploads.glob("*/audio.wav"), key=lambda p: p.stat().st_mtime_ns)  # upload order
    assert len(files) == len({s.send_s for s in result.sends}), "one uploaded file per send, kept by the server"
    size = chunk_samples(STREAM_EVERY, mic.sample_rate)
    assert size == 24000
    header = frontend_wav_header(48000, 1)
    pieces = []
    for path in files:
        data = path.read_bytes()
        assert data[:44] == header
        pcm = np.frombuffer(data[44:], "<i2")
        assert len(pcm) > 0 and len(pcm) % size == 0, "whole recorder chunks: the audio since the last send"
        pieces.append(pcm)
    sent = np.concatenate(pieces)
    # recording started within the microphone's first second: find where (the noise never repeats that soon)
    first_second = np.lib.stride_tricks.sliding_window_view(mic.pcm(0, mic.sample_rate + 100), 100)
    start = int(np.flatnonzero((first_second == sent[:100]).all(axis=1))[0])
    # exactly the microphone's samples, in order, none lost or sent twice (held chunks go in one later file)
    assert np.array_equal(sent, mic.pcm(start, len(sent)))
    assert len(sent) == size * len(result.tick_lag_ms), "every chunk handed over was sent"


def test_latency_tracks_stream_every_by_half_the_difference(tmp_path: Path):
    """Sampling model: a marker of length d is decoded from the first chunk that holds all of it (plus the
    decoder's 6 ms look-ahead), so its wait from capture to the send of that chunk is uniform on
    (d, stream_every + d]: median d + stream_every / 2. The server path is the same at both settings, so the
    p50 rises by about (1.0 - 0.5) / 2 = 250 ms (300 ms with 5 markers/s on a 0.5 s grid, whose waits are
    0.1 ... 0.5 s and 0.2 ... 1.0 s)."""
    body = 'name = "mic"\nduration_s = 10\nwarmup_s = 4\n[[targets]]\nkind = "gradio-mic"\nstream_every = [0.5, 1.0]\n'
    path = tmp_path / "mic.toml"
    path.write_text(body)
    scenario, resolved = load_scenario(path)
    summary = run_scenario(scenario, resolved, tmp_path / "runs").summary
    cases = {c["params"]["stream_every"]: c for c in summary["cases"]}
    for case in cases.values():
        assert case["status"] == "ok", case["status_reasons"]
        assert case["n"] >= 20 and case["stream_metrics"]["wrong_marker_ids"] == 0
    fast, slow = cases[0.5]["latency_ms"]["p50"], cases[1.0]["latency_ms"]["p50"]
    assert fast > MARKER_S * 1000, "never faster than a whole marker's capture"
    # 250-300 ms expected; +-100 ms for a loaded 2-core machine and the SSE poll (up to 50 ms) on each side
    assert 150 < slow - fast < 400, (fast, slow)
