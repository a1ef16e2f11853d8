"""An offline VAD for fastrtc's ReplyOnPause: the vendored silero v5 onnx model, run with onnxruntime.

fastrtc's default `get_silero_model()` downloads a model from the Hugging Face hub
(offline it hangs, then fails), and its wrapper feeds the v4 interface (`h`, `c`):
given the v5 model that the `silero-vad` wheel ships, every call fails inside a
blanket `except` and reports no speech, so ReplyOnPause never replies. This adapter
keeps fastrtc's `vad()` contract - `(seconds of speech, [{"start", "end"}, ...])`
in 16 kHz samples, `SileroVadOptions` or None for its defaults - and reuses fastrtc's
segmentation, but speaks v5: `input` (64 context samples + a 512-sample window),
`state` [2, B, 128], `sr`. A broken model raises instead of passing for silence.

The model is targets/media/silero_vad.onnx from silero-vad 6.2.3 (MIT, see
targets/media/SILERO_VAD_LICENSE).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import onnxruntime
from fastrtc.pause_detection.silero import SileroVADModel, SileroVadOptions
from fastrtc.utils import AudioChunk, audio_to_float32
from numpy.typing import NDArray
from scipy.signal import resample_poly

MODEL_PATH = Path(__file__).resolve().parent / "media" / "silero_vad.onnx"
SAMPLE_RATE = 16_000
WINDOW = 512  # the only window v5 takes at 16 kHz (v4 also took 1024 and 1536, fastrtc's default is 1024)
CONTEXT = 64  # v5 sees the last 64 samples of the previous window in front of each window

VadState = tuple[NDArray[np.float32], NDArray[np.float32]]  # (recurrent state, context samples)


class SileroV5VAD(SileroVADModel):
    """fastrtc's `PauseDetectionModel` over silero v5, loaded from the package, never downloaded."""

    def __init__(self, path: Path = MODEL_PATH) -> None:
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1  # one VAD per connection: leave the other core to the app
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"], sess_options=opts)

    def get_initial_state(self, batch_size: int) -> VadState:
        return np.zeros((2, batch_size, 128), np.float32), np.zeros((batch_size, CONTEXT), np.float32)

    def __call__(self, x: NDArray[np.float32], state: VadState, sr: int) -> tuple[float, VadState]:
        """Speech probability of one 512-sample window, and the state to pass with the next one."""
        recurrent, context = state
        window = np.concatenate([context, x.reshape(1, -1).astype(np.float32)], axis=1)
        out, recurrent = self.session.run(
            None, {"input": window, "state": recurrent, "sr": np.array(sr, dtype=np.int64)}
        )
        return float(out[0, 0]), (recurrent, window[:, -CONTEXT:])

    def vad(
        self,
        audio: tuple[int, NDArray[np.float32] | NDArray[np.int16]],
        options: SileroVadOptions | None,
    ) -> tuple[float, list[AudioChunk]]:
        """Seconds of speech in `audio` and where it is (16 kHz sample offsets), as fastrtc's model answers."""
        sampling_rate, samples = audio
        mono = audio_to_float32(np.asarray(samples).reshape(-1))
        if sampling_rate != SAMPLE_RATE:
            common = math.gcd(sampling_rate, SAMPLE_RATE)
            mono = resample_poly(mono, SAMPLE_RATE // common, sampling_rate // common).astype(np.float32)
        options = dataclasses.replace(options or SileroVadOptions(), window_size_samples=WINDOW)
        chunks = self.get_speech_timestamps(mono, options)
        return sum(c["end"] - c["start"] for c in chunks) / SAMPLE_RATE, chunks
