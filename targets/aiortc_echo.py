"""Bare aiortc video echo applying the same transforms: the floor every WebRTC number is compared with.

Same signalling as FastRTC, with no fastrtc and no Gradio:
POST /webrtc/offer {"sdp", "type": "offer", "webrtc_id"} -> {"sdp", "type": "answer"},
POST /input_hook {"webrtc_id", "transform", "delay_ms"}, GET /health.
Start it by hand:

    python -m targets.aiortc_echo --port 7861 [--host 127.0.0.1]

Unlike FastRTC it answers at once (no fixed 0.1 s sleep) and has no concurrency limit.
"""

from __future__ import annotations

import argparse

import uvicorn
from aiortc import MediaStreamTrack
from av import VideoFrame
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from targets.aiortc_signalling import TrackReply, signalling_app
from targets.transforms import TRANSFORMS, apply_transform


class InputHook(BaseModel):
    webrtc_id: str
    transform: str = "identity"
    delay_ms: float = 0


class TransformTrack(MediaStreamTrack):
    """Returns each received frame transformed, with the same timestamps."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, inputs: InputHook) -> None:
        super().__init__()
        self.source = source
        self.inputs = inputs

    async def recv(self) -> VideoFrame:
        frame = await self.source.recv()
        image = apply_transform(self.inputs.transform, frame.to_ndarray(format="rgb24"), self.inputs.delay_ms)
        out = VideoFrame.from_ndarray(image, format="rgb24")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out


def build_app() -> FastAPI:
    inputs: dict[str, InputHook] = {}

    def reply(webrtc_id: str) -> TrackReply:
        settings = inputs.setdefault(webrtc_id, InputHook(webrtc_id=webrtc_id))
        return lambda track: TransformTrack(track, settings)

    app = signalling_app("video", reply, lambda webrtc_id: inputs.pop(webrtc_id, None))

    @app.post("/input_hook")
    async def input_hook(body: InputHook) -> dict[str, str]:
        if body.transform not in TRANSFORMS:
            raise HTTPException(422, f"unknown transform {body.transform!r}; known: {', '.join(TRANSFORMS)}")
        settings = inputs.setdefault(body.webrtc_id, body)
        settings.transform, settings.delay_ms = body.transform, body.delay_ms
        return {"status": "ok"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7861)
    args = parser.parse_args()
    uvicorn.run(build_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
