"""A Gradio app streaming live chunks to `gr.Video(streaming=True)` / `gr.Audio(streaming=True)`, served as HLS.

Start it by hand:  python -m targets.gradio_hls --port 7860 --shape video --media-format ts --chunk-s 1
then open http://127.0.0.1:7860 and press Start.

Shapes: "video" is a live source: frame k of a run is captured at t0 + k / fps
(a moving scene with its frame-ID marker), transformed, encoded with PyAV (h264
in MPEG-TS, or mp4 that Gradio transcodes) and yielded once the chunk's last
frame has lasted its 1 / fps - a 1 s chunk ~1 s after its first frame, as a live
camera would. "audio" does the same with chunk_s of 48 kHz audio carrying `fps`
marker bursts a second, yielded as WAV or MP3 bytes. "camera" streams the
user's own webcam back, processed: the browser sends its frames through
`gr.Image(sources=["webcam"]).stream(...)` every 1 / fps s, and the generator
started by Start transforms each as it arrives and yields a chunk per chunk_s
of arrival time (the frames' capture times are the browser's, not stamped
here). "keep_repeating" is the Gradio guide's example: the same file (chunk_s
of marked video or audio) yielded every 0.5 s.

The frames' capture times (and, for keep_repeating, each yield's time) are
perf_counter seconds: CLOCK_MONOTONIC on Linux, one clock for every process on
the machine. GET /stamps returns them, so a client on this host can time every
frame from capture to the moment a player shows it. A generator running late
(Gradio still busy with the previous chunk) makes its frames later than their
capture time, as a camera buffering frames would, and that counts as latency.

Gradio probes every chunk with ffprobe (and transcodes mp4 and audio with
ffmpeg): without them on PATH this app refuses to start, saying so.
"""

from __future__ import annotations

import argparse
import io
import itertools
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import av
import gradio as gr
import numpy as np
import uvicorn
from fastapi import FastAPI

from bench.media.audio_marker import MARKER_S, SAMPLE_RATE, marker_waveform
from bench.media.camera import VirtualCamera
from targets.transforms import TRANSFORMS, apply_transform

SHAPES = ("video", "camera", "audio", "keep_repeating")
VIDEO_FORMATS = ("ts", "mp4")
AUDIO_FORMATS = ("wav", "mp3")
REPEAT_EVERY_S = 0.5  # the guide's keep_repeating sleeps 0.5 s between yields
MARKER_MARGIN_S = 0.02  # keeps a marker burst clear of its chunk's edges, where AAC's priming and padding smear
MAX_MARKERS_PER_S = 1 / (MARKER_S + MARKER_MARGIN_S)
TIME_BASE = Fraction(1, 90000)  # MPEG's clock: frame times need not fall on a frame-rate grid (a camera's do not)
MAX_WAITING_FRAMES = 300
CAMERA_POLL_S = 0.01  # how often the camera generator looks for new frames


@dataclass(frozen=True)
class Settings:
    shape: str = "video"
    media_format: str = "ts"
    chunk_s: float = 1.0
    transform: str = "identity"
    delay_ms: float = 0.0
    width: int = 640
    height: int = 480
    fps: float = 30.0

    @property
    def video(self) -> bool:
        return self.media_format in VIDEO_FORMATS


class Stamps:
    """Capture time of every sample made, and each session's yields (keep_repeating): what GET /stamps serves."""

    def __init__(self) -> None:
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self.samples: dict[int, float] = {}
        self.yields: dict[str, list[int]] = {}

    def new(self, made_s: float) -> int:
        with self._lock:
            sample_id = next(self._ids)
        self.samples[sample_id] = made_s
        return sample_id

    def yielded(self, session_hash: str) -> None:
        self.yields.setdefault(session_hash, []).append(self.new(time.perf_counter()))

    def to_json(self) -> dict[str, object]:
        return {"samples": dict(self.samples), "yields": {k: list(v) for k, v in self.yields.items()}}


class VideoChunk:
    """One chunk file: h264 frames, each encoded as it comes (x264 zerolatency: no lookahead to wait for)."""

    def __init__(self, path: Path, media_format: str, fps: float) -> None:
        self.path = path
        self._format = "mpegts" if media_format == "ts" else "mp4"
        self._rate = Fraction(fps).limit_denominator(1000)  # nominal, for x264's rate control
        self._container: Any = None
        self._stream: Any = None

    def add(self, image: np.ndarray, at_s: float) -> None:
        """Frame `image`, shown `at_s` seconds after the chunk's first frame."""
        if self._stream is None:  # sized by the first frame: a camera's frames are whatever size it sends
            self._container = av.open(str(self.path), "w", format=self._format)
            self._stream = self._container.add_stream("libx264", rate=self._rate)
            self._stream.width, self._stream.height, self._stream.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
            self._stream.codec_context.time_base = self._stream.time_base = TIME_BASE
            self._stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = round(at_s / TIME_BASE), TIME_BASE
        self._container.mux(self._stream.encode(frame))

    def close(self) -> str:
        self._container.mux(self._stream.encode(None))
        self._container.close()
        return str(self.path)


class CameraFeeds:
    """Webcam frames each browser session streamed in, waiting for that session's generator to take them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: dict[str, list[tuple[float, np.ndarray]]] = {}

    def put(self, session_hash: str, frame: np.ndarray) -> None:
        with self._lock:
            frames = self._frames.setdefault(session_hash, [])
            frames.append((time.perf_counter(), frame))
            del frames[:-MAX_WAITING_FRAMES]  # a session that never presses Start must not hold frames forever

    def take(self, session_hash: str) -> list[tuple[float, np.ndarray]]:
        """Every frame that arrived since the last take, with its arrival time."""
        with self._lock:
            return self._frames.pop(session_hash, [])


def audio_bytes(pcm: np.ndarray, media_format: str) -> bytes:
    """Mono float PCM at SAMPLE_RATE as a WAV or MP3 file in memory: what a TTS or music model would yield."""
    pcm16 = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    if media_format == "wav":
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes(pcm16.tobytes())
        return buffer.getvalue()
    with av.open(buffer, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm16[None, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts = SAMPLE_RATE, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


class LiveSource:
    """Makes the samples of one run on its own real-time clock, stamping each."""

    def __init__(self, settings: Settings, stamps: Stamps) -> None:
        self.settings = settings
        self.stamps = stamps
        self.camera = VirtualCamera(settings.width, settings.height, settings.fps)
        self.t0 = time.perf_counter()

    def wait_until(self, t: float) -> None:
        delay = t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)

    def video_chunk(self, path: Path, first: int, count: int, transform: str, delay_ms: float) -> str:
        """Frames `first`..`first + count - 1` of the run, each made no earlier than its capture time."""
        chunk = VideoChunk(path, self.settings.media_format, self.settings.fps)
        for k in range(first, first + count):
            captured = self.t0 + k / self.settings.fps
            self.wait_until(captured)
            image = self.camera.frame(self.stamps.new(captured))
            chunk.add(apply_transform(transform, image, delay_ms), (k - first) / self.settings.fps)
        return chunk.close()

    def audio_chunk(self, start: int, count: int) -> np.ndarray:
        """Samples `start`..`start + count - 1` of the run, with a marker every 1 / fps s where a whole burst fits
        inside the chunk (a burst split over two AAC segments would be smeared by each one's priming)."""
        pcm = np.zeros(count, dtype=np.float32)
        rate, margin, burst = self.settings.fps, round(MARKER_MARGIN_S * SAMPLE_RATE), round(MARKER_S * SAMPLE_RATE)
        for slot in itertools.count(math.ceil(start * rate / SAMPLE_RATE)):
            at = round(slot * SAMPLE_RATE / rate) + margin - start  # the grid slot / fps, shifted by the margin
            if at + burst + margin > count:
                break
            pcm[at : at + burst] = marker_waveform(self.stamps.new(self.t0 + (start + at) / SAMPLE_RATE))
        return pcm


def build_app(settings: Settings) -> FastAPI:
    """The Blocks app mounted on FastAPI, beside GET /stamps."""
    stamps = Stamps()
    frames_per_chunk = max(1, round(settings.chunk_s * settings.fps))
    samples_per_chunk = round(settings.chunk_s * SAMPLE_RATE)

    def live_video(transform: str, delay_ms: float | None) -> Iterator[str]:
        source = LiveSource(settings, stamps)
        workdir = Path(tempfile.mkdtemp(prefix="streambench-hls-"))
        try:
            for n in itertools.count():
                path = workdir / f"chunk{n}.{settings.media_format}"
                chunk = source.video_chunk(path, n * frames_per_chunk, frames_per_chunk, transform, delay_ms or 0)
                source.wait_until(source.t0 + (n + 1) * frames_per_chunk / settings.fps)
                _remove_chunk(workdir, n - 1)  # Gradio read the previous one before asking for this one
                yield chunk
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def live_audio() -> Iterator[bytes]:
        source = LiveSource(settings, stamps)
        for n in itertools.count():
            pcm = source.audio_chunk(n * samples_per_chunk, samples_per_chunk)
            source.wait_until(source.t0 + (n + 1) * settings.chunk_s)
            yield audio_bytes(pcm, settings.media_format)

    def keep_repeating(request: gr.Request) -> Iterator[str]:
        workdir = Path(tempfile.mkdtemp(prefix="streambench-hls-"))
        try:
            clip = _clip(workdir, settings, stamps, frames_per_chunk, samples_per_chunk)
            while True:
                time.sleep(REPEAT_EVERY_S)
                stamps.yielded(request.session_hash or "")
                yield clip
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    feeds = CameraFeeds()

    def receive(frame: np.ndarray | None, request: gr.Request) -> None:
        if frame is not None:
            feeds.put(request.session_hash or "", frame)

    def live_camera(transform: str, delay_ms: float | None, request: gr.Request) -> Iterator[str]:
        """This session's webcam frames, transformed as they arrive, cut into chunks of chunk_s of arrival time."""
        session = request.session_hash or ""
        workdir = Path(tempfile.mkdtemp(prefix="streambench-hls-"))
        feeds.take(session)  # frames from before Start: a live view starts with what the camera sees now
        waiting: list[tuple[float, np.ndarray]] = []
        try:
            for n in itertools.count():
                path = workdir / f"chunk{n}.{settings.media_format}"
                chunk, start = VideoChunk(path, settings.media_format, settings.fps), None
                while start is None or time.perf_counter() < start + settings.chunk_s:
                    waiting += feeds.take(session)
                    while waiting and (start is None or waiting[0][0] < start + settings.chunk_s):
                        arrived, frame = waiting.pop(0)
                        start = arrived if start is None else start
                        chunk.add(apply_transform(transform, frame, delay_ms or 0), arrived - start)
                    time.sleep(CAMERA_POLL_S)
                _remove_chunk(workdir, n - 1)
                yield chunk.close()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    with gr.Blocks(title="streambench gradio-hls") as demo:
        if settings.shape == "camera":
            webcam = gr.Image(sources=["webcam"], type="numpy", streaming=True, label="webcam")
            webcam.stream(receive, inputs=[webcam], outputs=None, stream_every=1 / settings.fps, api_name="camera")
        start = gr.Button("Start")
        if settings.video:
            output: gr.Video | gr.Audio = gr.Video(streaming=True, autoplay=True, label="live")
        else:
            output = gr.Audio(streaming=True, autoplay=True, label="live")
        if settings.shape == "keep_repeating":
            start.click(keep_repeating, inputs=None, outputs=[output], api_name="stream")
        elif settings.shape == "audio":
            start.click(live_audio, inputs=None, outputs=[output], api_name="stream")
        else:
            with gr.Row():
                transform = gr.Dropdown(list(TRANSFORMS), value=settings.transform, label="transform")
                delay_ms = gr.Number(settings.delay_ms, label="delay_ms")
            generator = live_camera if settings.shape == "camera" else live_video
            start.click(generator, inputs=[transform, delay_ms], outputs=[output], api_name="stream")

    app = FastAPI()

    @app.get("/stamps")
    def get_stamps() -> dict[str, object]:
        return stamps.to_json()

    return gr.mount_gradio_app(app, demo.queue(), path="/")


def _remove_chunk(workdir: Path, n: int) -> None:
    for path in workdir.glob(f"chunk{n}.*"):
        path.unlink(missing_ok=True)


def _clip(workdir: Path, settings: Settings, stamps: Stamps, frames: int, samples: int) -> str:
    """The one file keep_repeating yields: chunk_s of marked video or audio, made once."""
    source = LiveSource(settings, stamps)
    source.t0 -= settings.chunk_s  # recorded before the run: nothing to wait for
    if settings.video:
        return source.video_chunk(workdir / f"clip.{settings.media_format}", 0, frames, "identity", 0)
    path = workdir / f"clip.{settings.media_format}"
    path.write_bytes(audio_bytes(source.audio_chunk(0, samples), settings.media_format))
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--shape", choices=SHAPES, default="video")
    parser.add_argument("--media-format", choices=VIDEO_FORMATS + AUDIO_FORMATS, default=None)
    parser.add_argument("--chunk-s", type=float, default=1.0)
    parser.add_argument("--transform", choices=list(TRANSFORMS), default="identity")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument(
        "--fps", type=float, default=30.0, help="video frames, webcam captures (camera) or audio markers, a second"
    )
    args = parser.parse_args()
    media_format = args.media_format or ("wav" if args.shape == "audio" else "ts")
    settings = Settings(
        args.shape, media_format, args.chunk_s, args.transform, args.delay_ms, args.width, args.height, args.fps
    )
    if args.shape != "keep_repeating" and settings.video != (args.shape in ("video", "camera")):
        parser.error(f"shape {args.shape} cannot be streamed as {media_format}")
    if not settings.video and args.fps > MAX_MARKERS_PER_S:
        parser.error(f"fps {args.fps:g}: audio carries at most {MAX_MARKERS_PER_S:.1f} marker bursts a second (try 5)")
    if args.chunk_s <= 0 or args.chunk_s * args.fps < 1:
        parser.error("a chunk must hold at least one frame: chunk_s * fps >= 1")
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        sys.exit(
            f"gradio-hls: {' and '.join(missing)} not found on PATH; Gradio probes every streamed chunk with ffprobe "
            "and converts mp4 and audio with ffmpeg (Debian/Ubuntu: apt-get install ffmpeg)"
        )
    uvicorn.run(build_app(settings), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
