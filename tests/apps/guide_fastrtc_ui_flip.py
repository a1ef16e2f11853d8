"""The FastRTC guide's first video example, as written there: flip each webcam frame, served by `stream.ui.launch()`."""

import numpy as np
from fastrtc import Stream


def flip(image):
    return np.flip(image, axis=0)


stream = Stream(handler=flip, modality="video", mode="send-receive")

if __name__ == "__main__":
    stream.ui.launch()
