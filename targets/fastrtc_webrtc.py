"""A FastRTC video Stream mounted on FastAPI: the transform runs on every WebRTC frame.

Start it by hand:  python -m targets.fastrtc_webrtc --port 8000
Clients POST an SDP offer to /webrtc/offer, then set the transform with
POST /input_hook {"webrtc_id": ..., "transform": "flip", "delay_ms": 0}.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr
import numpy as np
import uvicorn
from fastapi import FastAPI
from fastrtc import Stream
from pydantic import BaseModel

from targets.transforms import TRANSFORMS, apply_transform


class InputHook(BaseModel):
    webrtc_id: str
    transform: str = "identity"
    delay_ms: float = 0


def handler(frame: np.ndarray, transform: str = "identity", delay_ms: float = 0) -> np.ndarray:
    return apply_transform(transform, frame, delay_ms)


def build_app(concurrency_limit: int = 1, time_limit: float | None = None) -> FastAPI:
    stream = Stream(
        handler,
        modality="video",
        mode="send-receive",
        additional_inputs=[gr.Dropdown(list(TRANSFORMS), value="identity"), gr.Number(0)],
        server_rtc_configuration={"iceServers": []},
        concurrency_limit=concurrency_limit,
        time_limit=time_limit,
    )
    app = FastAPI()
    stream.mount(app)

    @app.post("/input_hook")
    async def input_hook(body: InputHook) -> dict[str, str]:
        # fastrtc's video callback puts the frame in the first argument slot, so the
        # first value given to set_input is a placeholder (the webrtc id, as the UI does)
        stream.set_input(body.webrtc_id, body.webrtc_id, body.transform, body.delay_ms)
        return {"status": "ok"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--concurrency-limit", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=None)
    args = parser.parse_args()
    uvicorn.run(build_app(args.concurrency_limit, args.time_limit), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
