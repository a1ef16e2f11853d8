"""A Gradio webcam `.stream()` app that names its own address, as guides for Docker and LAN access write it."""

import gradio as gr
import numpy as np


def flip(frame):
    return None if frame is None else np.flipud(frame)


with gr.Blocks() as demo:
    input_img = gr.Image(sources=["webcam"], type="numpy")
    output_img = gr.Image(streaming=True)
    input_img.stream(flip, [input_img], [output_img], time_limit=30, stream_every=0.1)

demo.launch(server_name="0.0.0.0", server_port=7860)
