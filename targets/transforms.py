"""The transforms every target applies, written like the Gradio guide's examples.

Each takes and returns an RGB uint8 image (H x W x 3), so a user can copy any of
them into their own app. `delay` is a calibration transform: an identity whose
cost is a known sleep, which lets the harness recover an injected delay; the
audio targets' `DelayLine` is its counterpart for a stream of samples.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np


def identity(frame: np.ndarray) -> np.ndarray:
    return frame


def flip(frame: np.ndarray) -> np.ndarray:
    return np.flipud(frame)


def edges(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.Canny(frame, 100, 200), cv2.COLOR_GRAY2RGB)


def cartoon(frame: np.ndarray) -> np.ndarray:
    # colour: downsample twice, smooth with a bilateral filter six times, upsample back
    color = cv2.pyrDown(cv2.pyrDown(frame))
    for _ in range(6):
        color = cv2.bilateralFilter(color, 9, 9, 7)
    color = cv2.resize(cv2.pyrUp(cv2.pyrUp(color)), (frame.shape[1], frame.shape[0]))
    # edges: grey, median blur, adaptive threshold
    gray = cv2.medianBlur(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), 7)
    mask = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 2)
    return cv2.bitwise_and(color, cv2.cvtColor(mask, cv2.COLOR_GRAY2RGB))


def delay(frame: np.ndarray, delay_ms: float = 0) -> np.ndarray:
    """Identity after sleeping `delay_ms`: a transform of known cost."""
    if delay_ms > 0:
        time.sleep(delay_ms / 1000)
    return frame


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": identity,
    "flip": flip,
    "edges": edges,
    "cartoon": cartoon,
    "delay": delay,
}


def apply_transform(name: str, frame: np.ndarray, delay_ms: float = 0) -> np.ndarray:
    """Apply transform `name`; `delay_ms` > 0 adds that sleep to ANY transform ("flip + 50 ms").

    Raises KeyError for an unknown name. The result is C-contiguous (video encoders need that).
    """
    transform = TRANSFORMS[name]
    delay(frame, delay_ms or 0)
    return np.ascontiguousarray(transform(frame))


class DelayLine:
    """Holds audio back by a fixed delay: silence first, then the input, sample for sample.

    A sleep per chunk would back up (every chunk waits behind the previous one's sleep);
    a buffer primed with the delay's worth of silence adds exactly the delay, whatever
    the chunk sizes. A delay of 0 passes audio through unchanged.
    """

    def __init__(self, delay_ms: float, sample_rate: int, channels: int = 1) -> None:
        self.pending = np.zeros(round(delay_ms * sample_rate / 1000) * channels, dtype=np.int16)

    def process(self, samples: np.ndarray) -> np.ndarray:
        """The same number of samples (same shape and dtype), taken from `delay_ms` earlier in the stream."""
        flat = samples.reshape(-1)
        joined = np.concatenate([self.pending.astype(samples.dtype), flat])
        out, self.pending = joined[: flat.size], joined[flat.size :]
        return out.reshape(samples.shape)
