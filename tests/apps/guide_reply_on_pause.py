"""The FastRTC quickstart's ReplyOnPause echo, as the guide writes it: mounted on FastAPI, run with uvicorn."""

import numpy as np
import uvicorn
from fastapi import FastAPI
from fastrtc import ReplyOnPause, Stream


def echo(audio: tuple[int, np.ndarray]):
    # The function will be passed the audio until the user pauses
    # Implement any iterator that yields audio
    yield audio


stream = Stream(
    handler=ReplyOnPause(echo),
    modality="audio",
    mode="send-receive",
)

app = FastAPI()
stream.mount(app)

if __name__ == "__main__":
    uvicorn.run(app, host="0.0.0.0", port=7860)
