"""A FastRTC video app wired the way fastrtc's FastAPI examples wire extra inputs:
`stream.set_input(webrtc_id, *inputs)`, with no placeholder for the frame."""

import os

import gradio as gr
import numpy as np
import uvicorn
from fastapi import FastAPI
from fastrtc import Stream
from pydantic import BaseModel


class InputHook(BaseModel):
    webrtc_id: str
    transform: str = "identity"
    delay_ms: float = 0


def handler(frame: np.ndarray, transform: str = "identity", delay_ms: float = 0) -> np.ndarray:
    return np.flipud(frame) if transform == "flip" else frame


stream = Stream(
    handler,
    modality="video",
    mode="send-receive",
    additional_inputs=[gr.Dropdown(["identity", "flip"], value="identity"), gr.Number(0)],
    server_rtc_configuration={"iceServers": []},
)
app = FastAPI()
stream.mount(app)


@app.post("/input_hook")
async def input_hook(body: InputHook) -> dict:
    stream.set_input(body.webrtc_id, body.transform, body.delay_ms)
    return {"status": "ok"}


uvicorn.run(app, host="127.0.0.1", port=int(os.environ["GRADIO_SERVER_PORT"]), log_level="warning")
