"""A Gradio app whose event is a generator, as the guide's "Streaming outputs" shows.

Start it by hand:  python -m targets.gradio_generator --port 7860 --shape images
then open http://127.0.0.1:7860 and press Generate.

Shapes: `images` is fake_diffusion (`steps` noisy images, then a clean final one);
`tokens` streams text like an LLM chat, the reply growing by one token per yield.
Each item says when it was yielded, so a client can time yield -> display:
images carry the frame-ID marker with their index, and a `stamps` JSON output
yielded alongside holds {"item": index, "yield_s": perf_counter}; a token reads
"t<index>@<perf_counter> ". time.perf_counter() is CLOCK_MONOTONIC on Linux,
one clock for every process on the machine, so the harness can compare it with
its own. `--delay-ms` sleeps before each yield on top of the item interval: a
known gap the harness must recover between items.

The marker comes from streambench: instrumenting an app this way is what a user
who wants yield -> display times would write too.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import cv2
import gradio as gr
import numpy as np

from bench.media.marker import encode_marker

SHAPES = ("images", "tokens")


def diffusion_step(final: np.ndarray, step: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """Noise fading into `final` as the steps advance, like a diffusion sampler's previews.

    The noise is drawn at 1/8 of the size and upscaled, as previews decoded from a latent are: per-pixel
    noise made each WebP encode cost ~150 ms at 512x512 on our 2-core machine, far more than a real preview's.
    """
    height, width = final.shape[:2]
    small = rng.integers(0, 256, (max(1, height // 8), max(1, width // 8), 3), dtype=np.uint8)
    noise = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    weight = step / steps
    return (final * weight + noise * (1 - weight)).astype(np.uint8)


def final_image(width: int, height: int) -> np.ndarray:
    """The "finished" picture: a smooth orange gradient (the guide's final image is flat orange)."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = (255, 124, 0)
    image[:, :, 2] = np.linspace(0, 160, width, dtype=np.uint8)[None, :]
    return image


def build_demo(
    shape: str = "images",
    item_interval_ms: float = 100.0,
    delay_ms: float = 0.0,
    steps: int = 10,
    width: int = 512,
    height: int = 512,
) -> gr.Blocks:
    """One Generate button whose generator yields the shape's items, each stamped at its yield."""
    pause_s = (item_interval_ms + delay_ms) / 1000

    def fake_diffusion(count: float) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
        rng = np.random.default_rng()
        final = final_image(width, height)
        total = int(count)
        for step in range(total + 1):  # the noisy steps, then the final image
            image = diffusion_step(final, step, total, rng) if step < total else final.copy()
            encode_marker(image, step)
            time.sleep(pause_s)
            yield image, {"item": step, "yield_s": time.perf_counter()}

    def chat(prompt: str, count: float) -> Iterator[str]:
        reply = ""
        for index in range(int(count)):
            time.sleep(pause_s)
            reply += f"t{index}@{time.perf_counter():.6f} "
            yield reply

    with gr.Blocks(title="streambench gradio-generator") as demo:
        if shape == "images":
            count = gr.Slider(1, max(100, steps), value=steps, step=1, label="steps")
            button = gr.Button("Generate")
            image = gr.Image(label="image")
            stamps = gr.JSON(label="stamps")
            button.click(fake_diffusion, inputs=[count], outputs=[image, stamps], api_name="generate")
        else:
            prompt = gr.Textbox("Tell me a story", label="prompt")
            count = gr.Slider(1, max(1000, steps), value=steps, step=1, label="tokens")
            button = gr.Button("Generate")
            reply = gr.Textbox(label="reply")
            button.click(chat, inputs=[prompt, count], outputs=[reply], api_name="generate")
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--shape", choices=SHAPES, default="images")
    parser.add_argument("--item-interval-ms", type=float, default=100.0)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="extra sleep before each yield (calibration)")
    parser.add_argument("--steps", type=int, default=10, help="noisy images before the final one, or tokens")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=512)
    args = parser.parse_args()
    demo = build_demo(args.shape, args.item_interval_ms, args.delay_ms, args.steps, args.width, args.height)
    demo.queue().launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
