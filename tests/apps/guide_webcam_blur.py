"""A user's app, written the way the Gradio guide writes a webcam stream: a strong blur, which no frame marker
survives. BLUR_SLEEP_MS (environment) adds a known processing time; stream_every is longer than that, so a frame
never waits for the one before it."""

import os
import time

import cv2
import gradio as gr

SLEEP_S = float(os.environ.get("BLUR_SLEEP_MS", "0")) / 1000


def blur(frame):
    if frame is None:
        return None
    time.sleep(SLEEP_S)
    return cv2.GaussianBlur(frame, (0, 0), 15)


with gr.Blocks() as demo:
    with gr.Row():
        with gr.Column():
            input_img = gr.Image(sources=["webcam"], type="numpy")
        with gr.Column():
            output_img = gr.Image(streaming=True)
    input_img.stream(blur, [input_img], [output_img], time_limit=30, stream_every=0.3)

demo.launch()
