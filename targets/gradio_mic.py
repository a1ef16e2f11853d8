"""A Gradio `.stream()` microphone app: a live transcriber keeping its history in a gr.State.

The "transcriber" is a stand-in whose model is the harness's audio-marker decoder: every marker burst it hears
becomes the word "m<ID>" appended to the transcript, so a client can tell exactly which captured audio a
transcript update answers. Like a real streaming transcriber it keeps its decoder across chunks (a burst split
over two chunks is still heard) and returns the whole transcript each time.

Start it by hand:  python -m targets.gradio_mic --port 7860 --stream-every 0.5
then open http://127.0.0.1:7860 and record.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr
import numpy as np

from bench.media.audio_marker import AudioMarkerDecoder


@dataclass
class Transcript:
    """One listener's history: the text so far and the decoder that carries partial audio to the next chunk."""

    text: str = ""
    decoder: AudioMarkerDecoder | None = field(default=None, repr=False)


def transcribe(audio: tuple[int, np.ndarray] | None, history: Transcript | None) -> tuple[str, Transcript]:
    history = history or Transcript()
    if audio is None:
        return history.text, history
    sample_rate, pcm = audio
    if pcm.ndim > 1:
        pcm = pcm[:, 0]  # a stereo microphone: both channels carry the same voice
    if history.decoder is None or history.decoder.sample_rate != sample_rate:
        history.decoder = AudioMarkerDecoder(sample_rate)
    words = [f"m{reading.marker_id}" for reading in history.decoder.feed(pcm)]
    history.text = " ".join([history.text, *words]).strip()
    return history.text, history


def build_demo(
    stream_every: float = 0.5, time_limit: float | None = None, concurrency_limit: int | None = None
) -> gr.Blocks:
    with gr.Blocks(title="streambench gradio-mic") as demo:
        microphone = gr.Audio(sources=["microphone"], streaming=True, label="microphone")
        transcript = gr.Textbox(label="transcript")
        history = gr.State()
        microphone.stream(
            transcribe,
            inputs=[microphone, history],
            outputs=[transcript, history],
            stream_every=stream_every,
            time_limit=time_limit,
            concurrency_limit=concurrency_limit if concurrency_limit is not None else "default",
            api_name="transcribe",
        )
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--stream-every", type=float, default=0.5)
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--concurrency-limit", type=int, default=None)
    args = parser.parse_args()
    demo = build_demo(args.stream_every, args.time_limit, args.concurrency_limit)
    demo.queue().launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
