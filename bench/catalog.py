"""The target kinds the harness knows: how to start each, which client speaks to it."""

from __future__ import annotations

import sys
from dataclasses import dataclass

TRANSFORMS = ("identity", "flip", "edges", "cartoon", "delay")


@dataclass(frozen=True)
class TargetKind:
    name: str
    description: str
    client: str
    module: str | None = None
    ready_path: str = "/health"
    launch_options: tuple[str, ...] = ()

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
    )
}


def client_for(kind: TargetKind):
    """Import the client lazily: aiortc and gradio clients are heavy and independent."""
    if kind.client == "webrtc":
        from bench.clients.webrtc import WebRTCClient

        return WebRTCClient()
    if kind.client == "gradio-stream":
        from bench.clients.gradio_stream import GradioStreamClient

        return GradioStreamClient()
    raise ValueError(f"no client for {kind.client}")
