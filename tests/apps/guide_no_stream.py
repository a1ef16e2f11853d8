"""A user's app with no streaming event at all: a plain image Interface (the Gradio quickstart's shape)."""

import gradio as gr
import numpy as np


def sepia(image):
    return np.clip(image @ np.array([[0.393, 0.349, 0.272], [0.769, 0.686, 0.534], [0.189, 0.168, 0.131]]), 0, 255)


demo = gr.Interface(sepia, gr.Image(), "image", api_name="sepia")

if __name__ == "__main__":
    demo.launch()
