"""A FastRTC video app mounted on FastAPI, with an extra input but no route that calls `set_input`: its handler is
never called (docs/PROTOCOLS.md), whatever it would do to the frames."""

import os

import gradio as gr
import numpy as np
import uvicorn
from fastapi import FastAPI
from fastrtc import Stream


def handler(frame: np.ndarray, strength: float = 1.0) -> np.ndarray:
    return np.flipud(frame)


stream = Stream(
    handler,
    modality="video",
    mode="send-receive",
    additional_inputs=[gr.Slider(0, 2, value=1.0)],
    server_rtc_configuration={"iceServers": []},
)
app = FastAPI()
stream.mount(app)

uvicorn.run(app, host="127.0.0.1", port=int(os.environ["GRADIO_SERVER_PORT"]), log_level="warning")
