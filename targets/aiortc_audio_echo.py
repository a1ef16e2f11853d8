"""Bare aiortc audio echo, or a fixed delay line: the floor every WebRTC audio number is compared with.

Same signalling as FastRTC, with no fastrtc and no Gradio:
POST /webrtc/offer {"sdp", "type": "offer", "webrtc_id"} -> {"sdp", "type": "answer"}, GET /health.
Start it by hand:

    python -m targets.aiortc_audio_echo --port 7862 [--host 127.0.0.1] [--delay-ms 0]

Each received (decoded) audio frame goes straight back to the sender; with --delay-ms D
the audio comes back D ms later (a delay line, not a sleep). Unlike FastRTC it answers
at once (no fixed 0.1 s sleep) and has no concurrency limit.
"""

from __future__ import annotations

import argparse

import uvicorn
from aiortc import MediaStreamTrack
from av import AudioFrame
from fastapi import FastAPI

from targets.aiortc_signalling import signalling_app
from targets.transforms import DelayLine


class EchoTrack(MediaStreamTrack):
    """Returns each received audio frame (or the delay line's output for it) with the same timestamps."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack, delay_ms: float) -> None:
        super().__init__()
        self.source = source
        self.delay_ms = delay_ms
        self.line: DelayLine | None = None

    async def recv(self) -> AudioFrame:
        frame = await self.source.recv()
        if not self.delay_ms:
            return frame
        if self.line is None:
            self.line = DelayLine(self.delay_ms, frame.sample_rate, len(frame.layout.channels))
        # aiortc's opus decoder gives packed s16: one plane of interleaved samples
        samples = self.line.process(frame.to_ndarray())
        out = AudioFrame.from_ndarray(samples, format=frame.format.name, layout=frame.layout.name)
        out.sample_rate, out.pts, out.time_base = frame.sample_rate, frame.pts, frame.time_base
        return out


def build_app(delay_ms: float = 0) -> FastAPI:
    app = signalling_app("audio", lambda webrtc_id: lambda track: EchoTrack(track, delay_ms))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7862)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="hold the audio back this long (a delay line)")
    args = parser.parse_args()
    uvicorn.run(build_app(args.delay_ms), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
