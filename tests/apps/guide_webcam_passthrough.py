"""A user's app, written the way the Gradio guide writes a webcam stream, whose handler returns the frame as is
(a placeholder left in, or a forgotten transform)."""

import gradio as gr


def process(frame):
    return frame


with gr.Blocks() as demo:
    with gr.Row():
        with gr.Column():
            input_img = gr.Image(sources=["webcam"], type="numpy")
        with gr.Column():
            output_img = gr.Image(streaming=True)
    input_img.stream(process, [input_img], [output_img], time_limit=30, stream_every=0.1)

demo.launch()
