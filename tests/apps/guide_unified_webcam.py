"""A user's app: one webcam image that is both the stream's input and its output, as Gradio's streaming
guide writes it (nothing streambench-specific)."""

import gradio as gr
import numpy as np


def flip(frame):
    return np.flipud(frame)


with gr.Blocks() as demo:
    webcam = gr.Image(sources=["webcam"], streaming=True)
    webcam.stream(flip, inputs=webcam, outputs=webcam)

if __name__ == "__main__":
    demo.launch()
