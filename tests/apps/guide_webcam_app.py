"""A user's app, written the way the Gradio guide writes a webcam stream (nothing streambench-specific)."""

import cv2
import gradio as gr
import numpy as np


def transform_cv2(frame, transform):
    if frame is None:
        return None
    if transform == "edges":
        return cv2.cvtColor(cv2.Canny(frame, 100, 200), cv2.COLOR_GRAY2RGB)
    if transform == "flip":
        return np.flipud(frame)
    return frame


with gr.Blocks() as demo:
    with gr.Row():
        with gr.Column():
            transform = gr.Dropdown(choices=["none", "edges", "flip"], value="flip", label="Transformation")
            input_img = gr.Image(sources=["webcam"], type="numpy")
        with gr.Column():
            output_img = gr.Image(streaming=True)
    input_img.stream(transform_cv2, [input_img, transform], [output_img], time_limit=30, stream_every=0.1)

demo.launch()
