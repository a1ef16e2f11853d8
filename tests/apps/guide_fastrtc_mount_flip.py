"""The FastRTC guide's video flip mounted on FastAPI, meant for `uvicorn guide_fastrtc_mount_flip:app`: run as a
script it starts nothing."""

import numpy as np
from fastapi import FastAPI
from fastrtc import Stream


def flip(image):
    return np.flip(image, axis=0)


stream = Stream(handler=flip, modality="video", mode="send-receive")

app = FastAPI()
stream.mount(app)
