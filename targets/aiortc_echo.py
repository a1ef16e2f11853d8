"""Bare aiortc video echo applying the same transforms: the floor every WebRTC number is compared with.

Same signalling as FastRTC (POST /webrtc/offer, POST /input_hook), no fastrtc, no Gradio.
Start it by hand:  python -m targets.aiortc_echo --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import uvicorn
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from av import VideoFrame
from fastapi import FastAPI
from pydantic import BaseModel

from targets.transforms import apply_transform


class Offer(BaseModel):
    sdp: str
    type: str
    webrtc_id: str


class InputHook(BaseModel):
    webrtc_id: str
    transform: str = "identity"
    delay_ms: float = 0


class TransformTrack(MediaStreamTrack):
    """Returns each received frame transformed, with the same timestamps."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, inputs: dict[str, object]) -> None:
        super().__init__()
        self.source = source
        self.inputs = inputs

    async def recv(self) -> VideoFrame:
        frame = await self.source.recv()
        image = apply_transform(
            str(self.inputs["transform"]), frame.to_ndarray(format="rgb24"), float(self.inputs["delay_ms"])
        )
        out = VideoFrame.from_ndarray(image, format="rgb24")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out


def build_app() -> FastAPI:
    app = FastAPI()
    peers: dict[str, RTCPeerConnection] = {}
    inputs: dict[str, dict[str, object]] = {}

    @app.post("/webrtc/offer")
    async def offer(body: Offer) -> dict[str, str]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers[body.webrtc_id] = pc
        settings = inputs.setdefault(body.webrtc_id, {"transform": "identity", "delay_ms": 0.0})

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                pc.addTrack(TransformTrack(track, settings))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await pc.close()
                peers.pop(body.webrtc_id, None)
                inputs.pop(body.webrtc_id, None)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=body.sdp, type=body.type))
        await pc.setLocalDescription(await pc.createAnswer())
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

    @app.post("/input_hook")
    async def input_hook(body: InputHook) -> dict[str, str]:
        inputs.setdefault(body.webrtc_id, {}).update(transform=body.transform, delay_ms=body.delay_ms)
        return {"status": "ok"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.on_event("shutdown")
    async def close_peers() -> None:
        with contextlib.suppress(Exception):
            await asyncio.gather(*(pc.close() for pc in peers.values()))

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(build_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
