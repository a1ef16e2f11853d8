"""A Gradio `.stream()` webcam app written like the Gradio guide's example.

Start it by hand:  python -m targets.gradio_stream --port 7860 --stream-every 0.1
then open http://127.0.0.1:7860, allow the webcam, pick a transform.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr
import numpy as np

from targets.transforms import TRANSFORMS, apply_transform


def process(frame: np.ndarray | None, transform: str, delay_ms: float | None) -> np.ndarray | None:
    if frame is None:
        return None
    return apply_transform(transform, frame, delay_ms or 0)


def build_demo(
    stream_every: float = 0.1,
    time_limit: float | None = None,
    concurrency_limit: int | None = None,
    concurrency_id: str | None = None,
    output_format: str = "webp",
    unified: bool = False,
) -> gr.Blocks:
    with gr.Blocks(title="streambench gradio-stream") as demo:
        with gr.Row():
            transform = gr.Dropdown(list(TRANSFORMS), value="identity", label="transform")
            delay_ms = gr.Number(0, label="delay_ms")
        webcam = gr.Image(sources=["webcam"], type="numpy", streaming=True, format=output_format, label="webcam")
        output = webcam if unified else gr.Image(streaming=True, format=output_format, label="output")
        webcam.stream(
            process,
            inputs=[webcam, transform, delay_ms],
            outputs=[output],
            stream_every=stream_every,
            time_limit=time_limit,
            concurrency_limit=concurrency_limit if concurrency_limit is not None else "default",
            concurrency_id=concurrency_id,
            api_name="stream",
        )
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--stream-every", type=float, default=0.1)
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--concurrency-limit", type=int, default=None)
    parser.add_argument("--concurrency-id", default=None)
    parser.add_argument("--output-format", choices=["webp", "jpeg"], default="webp")
    parser.add_argument("--unified", action="store_true", help="the webcam component is also the output")
    args = parser.parse_args()
    demo = build_demo(
        stream_every=args.stream_every,
        time_limit=args.time_limit,
        concurrency_limit=args.concurrency_limit,
        concurrency_id=args.concurrency_id,
        output_format=args.output_format,
        unified=args.unified,
    )
    demo.queue().launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
