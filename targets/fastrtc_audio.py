"""A FastRTC audio Stream (send-receive) mounted on FastAPI: an echo, or a fixed delay line.

Start it by hand:

    python -m targets.fastrtc_audio --port 7860 [--host 127.0.0.1] [--delay-ms 0]
        [--concurrency-limit 1] [--time-limit 30]

WebRTC: POST /webrtc/offer ({"sdp", "type": "offer", "webrtc_id"}) with a data channel
named "text", as the browser does. The same Stream serves FastRTC's WebSocket
transport at /websocket/offer (start / media with base64 mu-law / stop). Audio is
taken and returned as 48 kHz mono, so neither path resamples. GET /health answers
{"status": "ok"} once the app is up.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import queue

import numpy as np
import uvicorn
from fastapi import FastAPI
from fastrtc import Stream, StreamHandler

from targets.transforms import DelayLine

SAMPLE_RATE = 48000
EMIT_POLL_S = 0.5  # emit() gives up waiting after this long, so a closed session frees its worker thread


class EchoHandler(StreamHandler):
    """The guide's echo handler (receive puts, emit gets), with an optional delay line in between."""

    def __init__(self, delay_ms: float = 0) -> None:
        # output at the input rate: fastrtc's default 24 kHz output would resample every chunk
        super().__init__(expected_layout="mono", output_sample_rate=SAMPLE_RATE, input_sample_rate=SAMPLE_RATE)
        self.delay_ms = delay_ms
        self.line = DelayLine(delay_ms, SAMPLE_RATE)
        self.frames: queue.Queue[tuple[int, np.ndarray]] = queue.Queue()

    def receive(self, frame: tuple[int, np.ndarray]) -> None:
        rate, samples = frame
        self.frames.put((rate, self.line.process(samples)))

    def emit(self) -> tuple[int, np.ndarray] | None:
        # the guide blocks in queue.get() for good: each closed session would then keep one of
        # the executor's few threads forever, and later sessions would get no audio back
        try:
            return self.frames.get(timeout=EMIT_POLL_S)
        except queue.Empty:
            return None

    def copy(self) -> EchoHandler:
        return EchoHandler(self.delay_ms)


def build_app(delay_ms: float = 0, concurrency_limit: int = 1, time_limit: float | None = None) -> FastAPI:
    stream = Stream(
        EchoHandler(delay_ms),
        modality="audio",
        mode="send-receive",
        rtc_configuration=None,
        server_rtc_configuration={"iceServers": []},
        concurrency_limit=concurrency_limit,
        time_limit=time_limit,
    )
    app = FastAPI()
    stream.mount(app)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="hold the audio back this long (a delay line)")
    parser.add_argument("--concurrency-limit", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=None, help="seconds a connection may last")
    args = parser.parse_args()
    app = build_app(args.delay_ms, args.concurrency_limit, args.time_limit)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
