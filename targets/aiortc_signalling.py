"""FastRTC's signalling served by bare aiortc: the part the aiortc echo targets share.

POST /webrtc/offer {"sdp", "type": "offer", "webrtc_id"} -> {"sdp", "type": "answer"}, answered at once
(no fixed 0.1 s sleep), with no concurrency limit; every peer still open is closed when the app stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiortc import MediaStreamTrack, RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from fastapi import FastAPI
from pydantic import BaseModel

TrackReply = Callable[[MediaStreamTrack], MediaStreamTrack]


class Offer(BaseModel):
    sdp: str
    type: str
    webrtc_id: str


def signalling_app(
    kind: str, reply: Callable[[str], TrackReply], forget: Callable[[str], object] = lambda webrtc_id: None
) -> FastAPI:
    """An app answering offers: `reply(webrtc_id)`, called when the offer comes, gives the track sent back for
    each received `kind` track; `forget(webrtc_id)` runs when that peer fails or closes."""
    peers: dict[str, RTCPeerConnection] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.gather(*(pc.close() for pc in list(peers.values())), return_exceptions=True)

    app = FastAPI(lifespan=lifespan)

    @app.post("/webrtc/offer")
    async def offer(body: Offer) -> dict[str, Any]:
        if body.webrtc_id in peers:
            return {"status": "failed", "meta": {"error": "connection_already_exists"}}
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers[body.webrtc_id] = pc
        answer_track = reply(body.webrtc_id)

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            channel.on("message", lambda message: None)  # the browser's "handshake"; nothing to answer

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == kind:
                pc.addTrack(answer_track(track))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                peers.pop(body.webrtc_id, None)
                forget(body.webrtc_id)
                await pc.close()

        await pc.setRemoteDescription(RTCSessionDescription(sdp=body.sdp, type=body.type))
        await pc.setLocalDescription(await pc.createAnswer())
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

    return app
