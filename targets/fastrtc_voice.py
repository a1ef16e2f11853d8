"""A FastRTC voice app: ReplyOnPause turn-taking over WebRTC, mounted on FastAPI, fully offline.

Start it by hand:

    python -m targets.fastrtc_voice --port 7860 [--host 127.0.0.1] [--handler echo|agent]
        [--audio-chunk-duration 0.6] [--stt-ms 0] [--llm-ms 0] [--tts-ms 0]

A client POSTs an SDP offer to /webrtc/offer ({"sdp", "type": "offer", "webrtc_id"}) with a
data channel named "text" and an audio track; when the VAD (targets/vad.py, silero v5 bundled)
hears a pause after speech, the handler's reply streams back on the audio track, and the data
channel carries {"type": "log", "data": "started_talking" | "pause_detected" | "response_starting"}.
GET /health answers {"status": "ok"} once the app is up.

Handlers, in the shapes of the FastRTC guide:
- `echo`: the ReplyOnPause echo - the user's turn, played back.
- `agent`: a voice agent with its services replaced by set delays - speech-to-text (`stt_ms`),
  an LLM streaming tokens (first after `llm_ms`), a TTS speaking each sentence as soon as it is
  complete (first audio `tts_ms` after the sentence) in 0.25 s chunks. Voice-to-voice then moves
  by stt_ms + llm_ms + tts_ms, so the harness can show it recovers a known cost.

CPU: fastrtc's emit loop asks the handler for output in a tight loop while a connection is open,
even when nobody speaks (docs/PROTOCOLS.md: ~76 % of a core); with one talking user this app took
~90 % of a core on a 2-core machine (0 % with no connection). On a small machine it competes with
the VAD and with the client.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import time
from collections.abc import Callable, Iterator

import numpy as np
import uvicorn
from fastapi import FastAPI
from fastrtc import AlgoOptions, ReplyOnPause, Stream
from numpy.typing import NDArray

from targets.vad import SileroV5VAD

HANDLERS = ("echo", "agent")
TTS_RATE = 24_000  # ReplyOnPause's default output rate: what a TTS model typically yields
TTS_CHUNK_S = 0.25
WORD_S = 0.18  # spoken length of one word of the stand-in TTS
TOKEN_S = 0.01  # LLM tokens after the first stream at 100 per second
REPLY = "Sure. I heard {seconds:.1f} seconds of speech and this is a stand-in answer."

Audio = tuple[int, NDArray[np.int16]]


def echo(audio: Audio) -> Iterator[Audio]:
    """The guide's ReplyOnPause echo: the whole turn, played back."""
    yield audio


def make_agent(stt_ms: float = 0, llm_ms: float = 0, tts_ms: float = 0) -> Callable[[Audio], Iterator[Audio]]:
    """An STT -> LLM -> TTS pipeline whose three services are set delays: no model, no network.

    A closure, not functools.partial: ReplyOnPause counts the handler's parameters and would wait
    for additional inputs that never come.
    """

    def agent(audio: Audio) -> Iterator[Audio]:
        rate, samples = audio
        time.sleep(stt_ms / 1000)  # speech-to-text runs on the whole turn
        transcript_s = samples.size / rate
        for sentence in _sentences(_llm_tokens(REPLY.format(seconds=transcript_s), llm_ms)):
            time.sleep(tts_ms / 1000)  # the TTS's time to first audio for this sentence
            speech = _speak(sentence)
            step = round(TTS_CHUNK_S * TTS_RATE)
            for start in range(0, speech.size, step):
                yield TTS_RATE, speech[start : start + step].reshape(1, -1)

    return agent


def _llm_tokens(text: str, first_token_ms: float) -> Iterator[str]:
    """Stream `text` word by word, the first after `first_token_ms`, as a chat model does."""
    time.sleep(first_token_ms / 1000)
    for index, word in enumerate(text.split()):
        if index:
            time.sleep(TOKEN_S)
        yield word


def _sentences(tokens: Iterator[str]) -> Iterator[str]:
    """Group streamed words into sentences: voice agents hand the TTS one sentence at a time."""
    words: list[str] = []
    for token in tokens:
        words.append(token)
        if token.endswith((".", "!", "?")):
            yield " ".join(words)
            words = []
    if words:
        yield " ".join(words)


def _speak(sentence: str) -> NDArray[np.int16]:
    """Stand-in speech: one faded tone per word, its pitch from the word, loud enough for any VAD of silence."""
    t = np.arange(round(WORD_S * TTS_RATE)) / TTS_RATE
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01)
    words = [np.sin(2 * np.pi * (180 + 20 * (len(word) % 8)) * t) * fade for word in sentence.split()]
    return (np.concatenate(words) * 0.3 * 32767).astype(np.int16)


def build_app(
    handler: str = "echo",
    audio_chunk_duration: float = 0.6,
    stt_ms: float = 0,
    llm_ms: float = 0,
    tts_ms: float = 0,
) -> FastAPI:
    if handler not in HANDLERS:
        raise ValueError(f"unknown handler {handler!r}; known: {', '.join(HANDLERS)}")
    vad = SileroV5VAD()
    vad.warmup()  # as fastrtc warms its own model: the first turn should not pay for onnxruntime's first runs
    reply = echo if handler == "echo" else make_agent(stt_ms, llm_ms, tts_ms)
    stream = Stream(
        ReplyOnPause(reply, model=vad, algo_options=AlgoOptions(audio_chunk_duration=audio_chunk_duration)),
        modality="audio",
        mode="send-receive",
        rtc_configuration=None,
        server_rtc_configuration={"iceServers": []},
    )
    app = FastAPI()
    stream.mount(app)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--handler", choices=HANDLERS, default="echo")
    parser.add_argument("--audio-chunk-duration", type=float, default=0.6, help="seconds of audio per VAD decision")
    parser.add_argument("--stt-ms", type=float, default=0, help="agent: speech-to-text time")
    parser.add_argument("--llm-ms", type=float, default=0, help="agent: LLM time to first token")
    parser.add_argument("--tts-ms", type=float, default=0, help="agent: TTS time to first audio of each sentence")
    args = parser.parse_args()
    app = build_app(args.handler, args.audio_chunk_duration, args.stt_ms, args.llm_ms, args.tts_ms)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
