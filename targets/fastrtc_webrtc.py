"""A FastRTC video Stream mounted on FastAPI: the transform runs on every WebRTC frame.

Start it by hand:

    python -m targets.fastrtc_webrtc --port 7860 [--host 127.0.0.1] [--concurrency-limit 1] [--time-limit 30]

A client POSTs an SDP offer to /webrtc/offer ({"sdp", "type": "offer", "webrtc_id"}),
opens a data channel named "text", then picks the transform with
POST /input_hook {"webrtc_id": ..., "transform": "flip", "delay_ms": 0}.
GET /health answers {"status": "ok"} once the app is up.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr
import numpy as np
import uvicorn
from fastapi import FastAPI, HTTPException
from fastrtc import Stream
from pydantic import BaseModel

from targets.transforms import TRANSFORMS, apply_transform


class InputHook(BaseModel):
    webrtc_id: str
    transform: str = "identity"
    delay_ms: float = 0


def handler(frame: np.ndarray, transform: str = "identity", delay_ms: float = 0) -> np.ndarray:
    # fastrtc hands a video callback BGR frames (and encodes the result as BGR); the
    # guide's transforms do not care, except cartoon's grey weights - as for any user
    return apply_transform(transform, frame, delay_ms or 0)


def build_app(concurrency_limit: int = 1, time_limit: float | None = None) -> FastAPI:
    stream = Stream(
        handler,
        modality="video",
        mode="send-receive",
        additional_inputs=[gr.Dropdown(list(TRANSFORMS), value="identity", label="transform"), gr.Number(0)],
        rtc_configuration=None,
        server_rtc_configuration={"iceServers": []},
        concurrency_limit=concurrency_limit,
        time_limit=time_limit,
    )
    app = FastAPI()
    stream.mount(app)

    @app.post("/input_hook")
    async def input_hook(body: InputHook) -> dict[str, str]:
        """mount() has no route that calls set_input; without one the handler never sees its inputs."""
        if body.transform not in TRANSFORMS:
            raise HTTPException(422, f"unknown transform {body.transform!r}; known: {', '.join(TRANSFORMS)}")
        if body.webrtc_id not in stream.connections:
            raise HTTPException(409, f"no connection {body.webrtc_id!r}: POST /webrtc/offer first")
        # fastrtc replaces the FIRST value given to set_input with the frame (the Gradio UI passes
        # its WebRTC component value there), so pass a placeholder before the real inputs
        stream.set_input(body.webrtc_id, body.webrtc_id, body.transform, body.delay_ms)
        return {"status": "ok"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--concurrency-limit", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=None, help="seconds a connection may last")
    args = parser.parse_args()
    uvicorn.run(build_app(args.concurrency_limit, args.time_limit), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
