"""A guide-style Gradio webcam stream that hangs 3 s after its first frame: SIGSTOP of its whole process group.

Its port still accepts connections (the kernel completes them) but nothing is answered, unlike a crash.
"""

import os
import signal
import threading

import gradio as gr
import numpy as np

hang = threading.Timer(3.0, os.killpg, (os.getpgid(0), signal.SIGSTOP))


def flip(frame, transform):
    if hang.ident is None:  # the first frame only
        hang.start()
    if frame is None:
        return None
    return np.flipud(frame) if transform == "flip" else frame


with gr.Blocks() as demo:
    transform = gr.Dropdown(choices=["identity", "flip"], value="flip", label="transform")
    webcam = gr.Image(sources=["webcam"], type="numpy")
    output = gr.Image(streaming=True)
    webcam.stream(flip, [webcam, transform], [output], stream_every=0.1)

demo.launch()
