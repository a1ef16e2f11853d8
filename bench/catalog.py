"""The target kinds the harness knows: how to start each, what it is fed, which clients speak to it."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Any, Literal

TRANSFORMS = ("identity", "flip", "edges", "cartoon", "delay")
SourceKind = Literal["video", "audio", "speech", "generated"]

# client name -> (module, class); imported lazily: aiortc and gradio clients are heavy and independent
CLIENTS: dict[str, tuple[str, str]] = {
    "webrtc": ("bench.clients.webrtc", "WebRTCClient"),
    "gradio-stream": ("bench.clients.gradio_stream", "GradioStreamClient"),
    "webrtc-audio": ("bench.clients.webrtc_audio", "WebRTCAudioClient"),
    "fastrtc-websocket": ("bench.clients.fastrtc_websocket", "FastRTCWebSocketClient"),
    "voice": ("bench.clients.voice", "VoiceClient"),
    "gradio-mic": ("bench.clients.gradio_mic", "GradioMicClient"),
    "gradio-sse": ("bench.clients.gradio_generator", "GradioSSEClient"),
    "gradio-client": ("bench.clients.gradio_generator", "GradioClientLibraryClient"),
    "hls": ("bench.clients.hls", "HLSClient"),
    "chromium": ("bench.clients.chromium", "ChromiumClient"),  # a real browser: headless Chromium, one tab per user
}


@dataclass(frozen=True)
class TargetKind:
    name: str
    description: str
    client: str  # the default client
    module: str | None = None
    ready_path: str = "/health"
    launch_options: tuple[str, ...] = ()
    source: SourceKind = "video"  # what the harness feeds it: camera frames, marker audio, speech, or nothing
    clients: tuple[str, ...] = ()  # other clients a scenario may pick with `client = ...`
    shapes: tuple[str, ...] = ()  # what the app makes, picked with `shape = ...` (first is the default)
    default_rate: float | None = None  # samples per second when the scenario sets no fps (markers, items)

    @property
    def samples_noun(self) -> str:
        """What one sample of this kind is, in plain words: "frames", "markers", "turns" or "items"."""
        return {"video": "frames", "audio": "markers", "speech": "turns", "generated": "items"}[self.source]

    @property
    def allowed_clients(self) -> tuple[str, ...]:
        return (self.client, *self.clients)

    def argv(self, settings: dict[str, object]) -> list[str]:
        """Command line for our own target, passing the settings it accepts as --options."""
        if self.module is None:
            raise ValueError(f"{self.name} has no bundled app")
        argv = [sys.executable, "-m", self.module, "--port", "{port}"]
        for option in self.launch_options:
            value = settings.get(option)
            flag = f"--{option.replace('_', '-')}"
            if value is True:
                argv.append(flag)
            elif value is not None and value is not False:
                argv += [flag, str(value)]
        return argv


TARGET_KINDS: dict[str, TargetKind] = {
    kind.name: kind
    for kind in (
        TargetKind(
            "fastrtc-webrtc",
            "FastRTC Stream (video send-receive) over WebRTC, mounted on FastAPI",
            client="webrtc",
            clients=("chromium",),
            module="targets.fastrtc_webrtc",
            launch_options=("concurrency_limit", "time_limit"),
        ),
        TargetKind(
            "aiortc-echo",
            "bare aiortc server applying the same transforms: the WebRTC floor",
            client="webrtc",
            module="targets.aiortc_echo",
        ),
        TargetKind(
            "gradio-stream",
            "Gradio Blocks app: webcam gr.Image(...).stream(...) to a streaming gr.Image, over the queue protocol",
            client="gradio-stream",
            clients=("chromium",),
            module="targets.gradio_stream",
            ready_path="/config",
            launch_options=(
                "stream_every",
                "time_limit",
                "concurrency_limit",
                "concurrency_id",
                "output_format",
                "unified",
            ),
        ),
        TargetKind(
            "fastrtc-audio",
            "FastRTC Stream (audio send-receive echo, or a delay line) over WebRTC or its WebSocket, on FastAPI",
            client="webrtc-audio",
            clients=("fastrtc-websocket",),
            module="targets.fastrtc_audio",
            launch_options=("delay_ms", "concurrency_limit", "time_limit"),
            source="audio",
            default_rate=5.0,
        ),
        TargetKind(
            "aiortc-audio-echo",
            "bare aiortc audio echo (or delay line): the WebRTC audio floor",
            client="webrtc-audio",
            module="targets.aiortc_audio_echo",
            launch_options=("delay_ms",),
            source="audio",
            default_rate=5.0,
        ),
        TargetKind(
            "fastrtc-voice",
            "FastRTC ReplyOnPause voice turns (offline VAD): echo, or an STT -> LLM -> TTS stand-in with set delays",
            client="voice",
            module="targets.fastrtc_voice",
            launch_options=("handler", "audio_chunk_duration", "stt_ms", "llm_ms", "tts_ms"),
            source="speech",
        ),
        TargetKind(
            "gradio-mic",
            "Gradio Blocks app: microphone gr.Audio(...).stream(...) with a gr.State history, transcript out",
            client="gradio-mic",
            module="targets.gradio_mic",
            ready_path="/config",
            launch_options=("stream_every", "time_limit", "concurrency_limit"),
            source="audio",
            default_rate=5.0,
        ),
        TargetKind(
            "gradio-generator",
            "Gradio Blocks app whose event is a generator: fake_diffusion step images, or text tokens",
            client="gradio-sse",
            clients=("gradio-client",),
            module="targets.gradio_generator",
            ready_path="/config",
            launch_options=("shape", "item_interval_ms", "delay_ms", "steps", "width", "height"),
            source="generated",
            shapes=("images", "tokens"),
        ),
        TargetKind(
            "gradio-hls",
            "Gradio Blocks app streaming gr.Video / gr.Audio(streaming=True) chunks, served as HLS",
            client="hls",
            module="targets.gradio_hls",
            ready_path="/config",
            launch_options=("shape", "media_format", "chunk_s", "transform", "delay_ms", "width", "height", "fps"),
            source="generated",
            shapes=("video", "camera", "audio", "keep_repeating"),
        ),
    )
}


def client_for(kind: TargetKind, settings: dict[str, Any] | None = None) -> Any:
    """The client the case asks for (`client = ...`), else the kind's default."""
    name = (settings or {}).get("client") or kind.client
    if name not in kind.allowed_clients:
        raise ValueError(f"{kind.name} has no client {name!r} (allowed: {', '.join(kind.allowed_clients)})")
    module, cls = CLIENTS[name]
    return getattr(importlib.import_module(module), cls)()
