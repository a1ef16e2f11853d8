"""Virtual microphones: a deterministic timeline of samples whose capture times are known exactly.

Sample k of a microphone is captured at `t0 + k / sample_rate` (perf_counter
seconds), like frame i of the virtual camera at `t0 + i / fps`. Clients either
wait for each chunk (`wait_until_sample`) or take what exists at their own tick
(`latest_sample`); `pcm()` returns the same samples for the same indices every
time, so the harness can rebuild exactly what was sent.

- `VirtualMicrophone`: audio-marker bursts (see `audio_marker`) over quiet
  noise; marker i starts at `t0 + i / markers_per_s`. Measures per-chunk
  latency of an audio path.
- `SpeechMicrophone`: real speech (the wav shipped in fastrtc) cut into
  utterances, separated by silence long enough for ReplyOnPause to answer.
  Utterance i plays the role of frame i; its capture time is its END, because
  voice-to-voice latency is measured from when the user stops talking.

Between bursts and utterances the microphone carries quiet noise (about -60
dBFS), not digital zeros, so codecs, VADs and comfort-noise logic behave as
with a real microphone.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

from bench.media.audio_marker import MARKER_S, SAMPLE_RATE, marker_waveform

NOISE_RMS = 0.001  # -60 dBFS: below speech pauses' energy threshold, above codecs' digital-silence paths
NOISE_S = 1.37  # the noise loop; not a multiple of any marker period, so bursts do not sit on the same noise
# noise between bursts: with one burst length, Opus at 24 kbps keeps every marker (312/312 at 5.2/s);
# at 20 ms it lost 16 % (434/516 at 8.6/s): its bit allocation needs the quiet to settle
MIN_QUIET_S = MARKER_S
SPEECH_FILE = ("fastrtc", "speech_to_text/test_file.wav")
FRAME_S = 0.01  # energy frame for finding pauses and utterance ends
SILENCE_DB = -45.0  # a frame this far below full scale is a pause...
MIN_PAUSE_S = 0.25  # ...and a run of such frames this long may end an utterance...
MAX_INNER_PAUSE_S = 0.5  # ...and must at this length: ReplyOnPause (0.6 s chunks) would answer there
UTTERANCE_S = (2.0, 4.0)
LEAD_S = 0.5  # quiet before the first utterance, so a VAD has a noise floor to start from


class _Timeline:
    """Shared clock of a microphone: sample index <-> perf_counter time."""

    sample_rate: int
    t0: float | None = None

    def start(self, t0: float | None = None) -> None:
        """Start the clock: sample 0 is captured at `t0` (default: now)."""
        self.t0 = time.perf_counter() if t0 is None else t0

    @property
    def started(self) -> float:
        if self.t0 is None:
            raise RuntimeError("microphone not started")
        return self.t0

    def sample_time(self, index: int) -> float:
        """When mic sample `index` is captured."""
        return self.started + index / self.sample_rate

    def latest_sample(self, now: float | None = None) -> int:
        """The newest sample the microphone has captured by `now` (what a timer-driven client grabs up to)."""
        now = time.perf_counter() if now is None else now
        return max(0, math.floor((now - self.started) * self.sample_rate))

    async def wait_until_sample(self, index: int) -> None:
        """Sleep until sample `index` has been captured, in real time."""
        delay = self.sample_time(index) - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualMicrophone(_Timeline):
    """Marker bursts at a fixed rate over quiet noise; marker i starts at t0 + i / markers_per_s."""

    def __init__(self, markers_per_s: float = 5.0, sample_rate: int = SAMPLE_RATE) -> None:
        if not 0 < markers_per_s <= 1 / (MARKER_S + MIN_QUIET_S):
            raise ValueError(
                f"markers_per_s must leave {MIN_QUIET_S * 1e3:.0f} ms of noise between bursts (Opus needs it): "
                f"at most {1 / (MARKER_S + MIN_QUIET_S):.1f}, got {markers_per_s}"
            )
        self.markers_per_s = markers_per_s
        self.sample_rate = sample_rate
        self._noise = _noise(sample_rate)
        self._marker_len = len(marker_waveform(0, sample_rate))

    @property
    def fps(self) -> float:
        """Markers per second: the runner treats it as the source's sample rate, like a camera's fps."""
        return self.markers_per_s

    def capture_time(self, marker_id: int) -> float:
        """When the first sample of marker `marker_id` is captured (t0 + i / markers_per_s, to the sample)."""
        return self.sample_time(self._first_sample(marker_id))

    def capture_times(self, until_s: float) -> dict[int, float]:
        """Every marker whose first sample is captured by `until_s` (perf_counter time), with its capture time."""
        last = self._last_marker_before(self.latest_sample(until_s) + 1)
        return {i: self.capture_time(i) for i in range(last + 1)}

    def pcm(self, start: int, count: int) -> np.ndarray:
        """Int16 mono samples [start, start + count) of the timeline; the same every call."""
        out = _noise_slice(self._noise, start, count)
        first = max(0, self._last_marker_before(start - self._marker_len + 1) + 1)
        for marker_id in range(first, self._last_marker_before(start + count) + 1):
            at = self._first_sample(marker_id)
            burst = marker_waveform(marker_id, self.sample_rate)
            lo, hi = max(at, start), min(at + len(burst), start + count)
            out[lo - start : hi - start] += burst[lo - at : hi - at]
        return _to_int16(out)

    def marker_at(self, start: int, count: int) -> list[int]:
        """IDs of markers whose first sample lies in [start, start + count)."""
        first = max(0, self._last_marker_before(start) + 1)
        return list(range(first, self._last_marker_before(start + count) + 1))

    def _first_sample(self, marker_id: int) -> int:
        return round(marker_id * self.sample_rate / self.markers_per_s)

    def _last_marker_before(self, index: int) -> int:
        """The last marker whose first sample is < `index` (-1 if none)."""
        guess = math.floor(index * self.markers_per_s / self.sample_rate)
        while guess >= 0 and self._first_sample(guess) >= index:
            guess -= 1
        while self._first_sample(guess + 1) < index:
            guess += 1
        return guess


class SpeechMicrophone(_Timeline):
    """Speech utterances separated by silence, for ReplyOnPause turns; sample i = utterance i."""

    def __init__(self, gap_s: float = 2.5, sample_rate: int = SAMPLE_RATE) -> None:
        self.gap_s = gap_s
        self.sample_rate = sample_rate
        speech, pieces = _utterances(sample_rate)
        noise = _noise(sample_rate)
        gap = round(gap_s * sample_rate)
        layout: list[np.ndarray] = [np.zeros(round(LEAD_S * sample_rate))]
        self.utterances: list[tuple[int, int]] = []
        cursor = len(layout[0])
        for lo, hi, onset, offset in pieces:
            self.utterances.append((cursor + onset - lo, cursor + offset - lo))
            layout += [speech[lo:hi], np.zeros(gap)]
            cursor += hi - lo + gap
        clean = np.concatenate(layout)
        self._loop = _to_int16(clean + np.resize(noise, len(clean)))
        self.loop_len = len(self._loop)

    @property
    def fps(self) -> float:
        """Utterances per second: the runner treats it as the source's sample rate."""
        return len(self.utterances) * self.sample_rate / self.loop_len

    def onset_time(self, utterance: int) -> float:
        """When the first sample of utterance `utterance` (counting across loops) is captured."""
        return self.sample_time(self._sample(utterance, 0))

    def capture_time(self, utterance: int) -> float:
        """When utterance `utterance` ENDS: its last sample above the energy threshold is captured."""
        return self.sample_time(self._sample(utterance, 1))

    def capture_times(self, until_s: float) -> dict[int, float]:
        """Every utterance that has ENDED by `until_s` (perf_counter time), with its end time."""
        times: dict[int, float] = {}
        i = 0
        while (end := self.capture_time(i)) <= until_s:
            times[i] = end
            i += 1
        return times

    def pcm(self, start: int, count: int) -> np.ndarray:
        """Int16 mono samples [start, start + count) of the looping timeline; the same every call."""
        return self._loop[(start + np.arange(count)) % self.loop_len]

    def _sample(self, utterance: int, edge: int) -> int:
        loop, k = divmod(utterance, len(self.utterances))
        return loop * self.loop_len + self.utterances[k][edge]


def speech_file() -> Path:
    """The speech wav inside the installed fastrtc, found without importing fastrtc (which imports gradio: ~5 s)."""
    package, name = SPEECH_FILE
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{package} is not installed: SpeechMicrophone needs its {name}")
    return Path(spec.origin).parent / name


@lru_cache(maxsize=8)
def _noise(sample_rate: int) -> np.ndarray:
    """A fixed loop of quiet white noise (seeded: every run and every call sends the same samples)."""
    rng = np.random.default_rng(20261127)
    return rng.normal(0.0, NOISE_RMS, round(NOISE_S * sample_rate))


def _noise_slice(noise: np.ndarray, start: int, count: int) -> np.ndarray:
    return noise[(start + np.arange(count)) % len(noise)]


def _to_int16(samples: np.ndarray) -> np.ndarray:
    return np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768).astype(np.int16)


@lru_cache(maxsize=4)
def _utterances(sample_rate: int) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """The speech at `sample_rate` and its utterances as (cut_start, cut_stop, onset, offset) samples.

    Cuts fall in pauses; onset / offset are the first / last sample above the
    energy threshold, so they do not depend on where the cut fell.
    """
    source_rate, data = wavfile.read(speech_file())
    g = math.gcd(sample_rate, source_rate)
    speech = resample_poly(data.astype(np.float64) / 32768, sample_rate // g, source_rate // g)
    frame = round(FRAME_S * sample_rate)
    frames = len(speech) // frame
    rms = np.sqrt(np.mean(speech[: frames * frame].reshape(frames, frame) ** 2, axis=1))
    loud = np.flatnonzero(20 * np.log10(rms + 1e-12) > SILENCE_DB)
    gaps = np.flatnonzero(np.diff(loud) * FRAME_S > MIN_PAUSE_S)
    pauses = [((int(loud[k]) + 1) * frame, int(loud[k + 1]) * frame) for k in gaps]  # quiet spans inside the speech
    pieces = _best_cuts((int(loud[0]) * frame, (int(loud[-1]) + 1) * frame), pauses, sample_rate)
    threshold = 10 ** (SILENCE_DB / 20)
    found = []
    for lo, hi in _widened(pieces, len(speech)):
        above = np.flatnonzero(np.abs(speech[lo:hi]) > threshold)
        found.append((lo, hi, lo + int(above[0]), lo + int(above[-1])))
    return speech, found


def _best_cuts(span: tuple[int, int], pauses: list[tuple[int, int]], sample_rate: int) -> list[tuple[int, int]]:
    """Pieces of `span` cut at a subset of `pauses`: every pause a VAD would end a turn at, plus the
    others that bring the pieces nearest to UTTERANCE_S (fewest seconds outside it; ties: more pieces)."""
    forced = [p for p in pauses if (p[1] - p[0]) / sample_rate >= MAX_INNER_PAUSE_S]
    optional = [p for p in pauses if p not in forced]
    best: tuple[float, int] | None = None
    chosen: list[tuple[int, int]] = []
    for mask in range(1 << len(optional)):
        used = sorted(forced + [p for k, p in enumerate(optional) if (mask >> k) & 1])
        edges = [span[0], *[e for p in used for e in p], span[1]]
        pieces = list(zip(edges[0::2], edges[1::2], strict=True))
        lengths = [(hi - lo) / sample_rate for lo, hi in pieces]
        outside = sum(max(0.0, UTTERANCE_S[0] - x, x - UTTERANCE_S[1]) for x in lengths)
        score = (outside, -len(pieces))
        if best is None or score < best:
            best, chosen = score, pieces
    return chosen


def _widened(pieces: list[tuple[int, int]], total: int) -> list[tuple[int, int]]:
    """Each piece plus half of the quiet on either side, so cuts fall in quiet audio and speech tails stay."""
    before = [0, *[hi for _, hi in pieces[:-1]]]
    after = [*[lo for lo, _ in pieces[1:]], total]
    return [(lo - (lo - b) // 2, hi + (a - hi) // 2) for (lo, hi), b, a in zip(pieces, before, after, strict=True)]
