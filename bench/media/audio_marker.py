"""Audio marker: which microphone chunk does received audio carry, and exactly where does it start?

One burst of MARKER_S = 96 ms: a 12 ms linear chirp (400 -> 3400 Hz) that the
decoder finds by normalised cross-correlation (sample-accurate, gain-free),
then 7 symbols of 12 ms. Each symbol is two simultaneous tones, one of 8 in a
low group (400-1800 Hz) and one of 8 in a high group (2000-3400 Hz): 6 bits a
symbol, 42 bits in all = 24-bit ID + CRC-16 of it + 2 fixed bits. Tones sit
200 Hz apart and are read through a 10 ms Hann window centred in the symbol,
so neighbours fall on the window's spectral zeros; each group's tone index is
Gray-coded, so mistaking a neighbour costs one bit. Everything stays inside
400-3400 Hz, so the burst survives Opus, G.711 mu-law, and 8 kHz resampling.
Decoding compares tones within a group (argmax), so it needs no level
threshold and ignores gain. A reading is returned only when the chirp is
clear, every tone decision but at most two has a clear winner (the CRC picks
among the rest) and the CRC matches: a wrong ID is never reported.

`start_sample` counts samples as received, so a codec's delay (Opus: 6.5 ms)
is part of the measured latency, as it is for a user.

Callers feed MONO audio: average or pick one channel of stereo `(n, 2)` or
interleaved data before `feed()`.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import oaconvolve

SAMPLE_RATE = 48000
ID_BITS = 24
CRC_BITS = 16
PAD = 0b10  # two fixed bits fill the last symbol and add to the check
BITS = ID_BITS + CRC_BITS + 2
MAX_ID = (1 << ID_BITS) - 1
CRC_SALT = 0x3C5A  # a burst of all-lowest tones must not pass the check

CHIRP_S = 0.012
CHIRP_F0, CHIRP_F1 = 400.0, 3400.0
SYMBOL_S = 0.012
WINDOW_S = 0.010  # analysis window, centred: 1 ms guards at each edge absorb ramps and codec smear
RAMP_S = 0.001
TONES = 8  # per group
TONE_BITS = 3
SYMBOLS = BITS // (2 * TONE_BITS)
LOW_TONES = 400.0 + 200.0 * np.arange(TONES)
HIGH_TONES = 2000.0 + 200.0 * np.arange(TONES)
MARKER_S = CHIRP_S + SYMBOLS * SYMBOL_S
AMPLITUDE = 0.45  # peak of the burst; two tones share it

MIN_NCC = 0.5  # chirp correlation that makes a candidate: markers read >= 0.7 after 8 kHz mu-law, speech <= 0.45
MIN_RATIO = 3.0  # a tone decision is clear when its power beats the runner-up by this factor
MAX_ERASURES = 2  # unclear decisions the CRC may resolve (it detects any 3-bit error)
MIN_RMS = 1e-4  # below this (about -80 dBFS) there is nothing to correlate


@dataclass(frozen=True)
class AudioMarkerReading:
    marker_id: int
    start_sample: int  # index, in the stream fed to the decoder, of the marker's first sample


@dataclass(frozen=True)
class _Layout:
    chirp: np.ndarray  # unit-energy template
    chirp_len: int
    symbol_len: int
    total_len: int
    window_offset: int  # from a symbol's start to its analysis window
    low: np.ndarray  # (window, TONES) complex: Hann window times each tone
    high: np.ndarray


def _gray(value: int) -> int:
    return value ^ (value >> 1)


_GRAY = np.array([_gray(v) for v in range(TONES)])
_UNGRAY = np.argsort(_GRAY)  # tone index -> value


@lru_cache(maxsize=8)
def _layout(sample_rate: int) -> _Layout:
    chirp_len = round(CHIRP_S * sample_rate)
    symbol_len = round(SYMBOL_S * sample_rate)
    window_len = round(WINDOW_S * sample_rate)
    t = np.arange(chirp_len) / sample_rate
    sweep = (CHIRP_F1 - CHIRP_F0) / CHIRP_S
    chirp = np.sin(2 * np.pi * (CHIRP_F0 * t + 0.5 * sweep * t * t)) * _ramps(chirp_len, sample_rate)
    tw = np.arange(window_len) / sample_rate
    hann = np.hanning(window_len)[:, None]
    return _Layout(
        chirp=chirp / np.linalg.norm(chirp),
        chirp_len=chirp_len,
        symbol_len=symbol_len,
        total_len=chirp_len + SYMBOLS * symbol_len,
        window_offset=(symbol_len - window_len) // 2,
        low=hann * np.exp(-2j * np.pi * tw[:, None] * LOW_TONES[None, :]),
        high=hann * np.exp(-2j * np.pi * tw[:, None] * HIGH_TONES[None, :]),
    )


def _ramps(length: int, sample_rate: int) -> np.ndarray:
    """Raised-cosine edges, so symbol changes do not click (a click spreads over every tone)."""
    ramp = min(round(RAMP_S * sample_rate), length // 2)
    envelope = np.ones(length)
    edge = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    envelope[:ramp] = edge
    envelope[length - ramp :] = edge[::-1]
    return envelope


def _check(marker_id: int) -> int:
    return binascii.crc_hqx(marker_id.to_bytes(3, "big"), 0xFFFF) ^ CRC_SALT


def _tone_indices(marker_id: int) -> np.ndarray:
    """(SYMBOLS, 2) tone indices: low and high group of each symbol."""
    value = (((marker_id << CRC_BITS) | _check(marker_id)) << 2) | PAD
    fields = [(value >> (BITS - TONE_BITS * (k + 1))) & (TONES - 1) for k in range(2 * SYMBOLS)]
    return _GRAY[np.array(fields)].reshape(SYMBOLS, 2)


def marker_waveform(marker_id: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Float32 mono burst of MARKER_S for `marker_id`, peak AMPLITUDE (room for codec overshoot)."""
    marker_id = int(marker_id)  # numpy integers too
    if not 0 <= marker_id <= MAX_ID:
        raise ValueError(f"marker_id must be in 0..{MAX_ID}, got {marker_id}")
    layout = _layout(sample_rate)
    parts = [layout.chirp / np.max(np.abs(layout.chirp))]
    t = np.arange(layout.symbol_len) / sample_rate
    envelope = _ramps(layout.symbol_len, sample_rate)
    for low, high in _tone_indices(marker_id):
        tones = np.sin(2 * np.pi * LOW_TONES[low] * t) + np.sin(2 * np.pi * HIGH_TONES[high] * t)
        parts.append(0.5 * tones * envelope)
    return (AMPLITUDE * np.concatenate(parts)).astype(np.float32)


class AudioMarkerDecoder:
    """Streaming: feed received audio in any chunk sizes; returns each marker once, when complete.

    Cost is one cross-correlation of each new sample with the 12 ms chirp, plus
    a 7 x 16 tone read at each chirp candidate.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.sample_rate = sample_rate
        self._layout = _layout(sample_rate)
        self._buf = np.zeros(0)
        self._base = 0  # stream index of _buf[0]
        self._next = 0  # first chirp position not yet scanned
        self._first: int | None = None  # where the correlation of a candidate first crossed MIN_NCC...
        self._start: int | None = None  # ...and where it peaks: the marker's first sample

    def feed(self, pcm: np.ndarray) -> list[AudioMarkerReading]:
        """Append mono `pcm` (int16, or float in [-1, 1]) and return the markers it completed."""
        samples = np.asarray(pcm)
        if samples.ndim != 1:
            raise ValueError(f"feed() takes mono audio, got shape {samples.shape}: pick or mix a channel first")
        scale = 1 / 32768 if samples.dtype == np.int16 else 1.0
        self._buf = np.concatenate([self._buf, samples.astype(np.float64) * scale])
        readings: list[AudioMarkerReading] = []
        layout = self._layout
        search = layout.chirp_len // 2  # the peak lies within this many samples of the first crossing
        while True:
            end = self._base + len(self._buf)
            if self._first is None:
                if end - self._next < layout.chirp_len:
                    break
                ncc = self._ncc(self._next, end - layout.chirp_len + 1)
                above = np.flatnonzero(ncc >= MIN_NCC)
                if len(above) == 0:
                    self._next = end - layout.chirp_len + 1
                    break
                self._first = self._next + int(above[0])
            if self._start is None:
                if end < self._first + search + layout.chirp_len:
                    break
                self._start = self._first + int(np.argmax(self._ncc(self._first, self._first + search)))
            if end < self._start + layout.total_len:
                break
            marker_id = self._read(self._start)
            if marker_id is None:
                self._next = self._first + search
            else:
                readings.append(AudioMarkerReading(marker_id, self._start))
                self._next = self._start + layout.total_len
            self._first = self._start = None
        self._trim()
        return readings

    def _trim(self) -> None:
        keep = self._next if self._first is None else self._first
        drop = keep - self._base
        if drop > 0:
            self._buf = self._buf[drop:]
            self._base = keep

    def _ncc(self, start: int, stop: int) -> np.ndarray:
        """Normalised correlation with the chirp for chirp positions [start, stop)."""
        length = self._layout.chirp_len
        segment = self._buf[start - self._base : stop - self._base + length - 1]
        if stop - start <= 4 * length:  # a chunk's worth: numpy's direct loop, without scipy's dispatch (~0.2 ms)
            dot = np.correlate(segment, self._layout.chirp, mode="valid")
        else:
            dot = oaconvolve(segment, self._layout.chirp[::-1], mode="valid")
        energy = np.concatenate([[0.0], np.cumsum(segment * segment)])
        window = energy[length:] - energy[:-length]
        norm = np.sqrt(np.maximum(window, length * MIN_RMS**2))
        return dot / norm

    def _read(self, start: int) -> int | None:
        layout = self._layout
        offset = start - self._base + layout.chirp_len + layout.window_offset
        window_len = layout.low.shape[0]
        index = offset + layout.symbol_len * np.arange(SYMBOLS)[:, None] + np.arange(window_len)[None, :]
        windows = self._buf[index]  # (SYMBOLS, window)
        powers = np.concatenate([np.abs(windows @ layout.low) ** 2, np.abs(windows @ layout.high) ** 2], axis=0)
        order = np.argsort(powers, axis=1)  # rows: 7 low decisions then 7 high decisions
        best, second = order[:, -1], order[:, -2]
        rows = np.arange(len(powers))
        unsure = np.flatnonzero(powers[rows, best] < MIN_RATIO * powers[rows, second])
        if len(unsure) > MAX_ERASURES:
            return None
        found = set()
        for guess in range(1 << len(unsure)):
            tones = best.copy()
            for k, row in enumerate(unsure):
                if (guess >> k) & 1:
                    tones[row] = second[row]
            value = 0
            for low, high in zip(tones[:SYMBOLS], tones[SYMBOLS:], strict=True):
                value = (value << (2 * TONE_BITS)) | (int(_UNGRAY[low]) << TONE_BITS) | int(_UNGRAY[high])
            if (value & 0b11) != PAD:
                continue
            marker_id, check = value >> (CRC_BITS + 2), (value >> 2) & ((1 << CRC_BITS) - 1)
            if _check(marker_id) == check:
                found.add(marker_id)
        return found.pop() if len(found) == 1 else None


_MULAW_BIAS = 0x84
_MULAW_CLIP = 8159  # in the 14-bit domain G.711 works in
_MULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def mulaw_encode(pcm: np.ndarray) -> bytes:
    """G.711 mu-law bytes of int16 samples, bit-exact with `audioop.lin2ulaw` (fastrtc's WebSocket codec)."""
    x = np.asarray(pcm, dtype=np.int16).astype(np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(x), _MULAW_CLIP) + (_MULAW_BIAS >> 2)
    segment = np.searchsorted(_MULAW_SEGMENT_ENDS, magnitude)
    code = np.where(segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return (code ^ mask).astype(np.uint8).tobytes()


def _mulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _MULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _MULAW_BIAS - t, t - _MULAW_BIAS).astype(np.int16)


_MULAW_DECODE = _mulaw_table()


def mulaw_decode(data: bytes) -> np.ndarray:
    """Int16 samples of G.711 mu-law bytes, bit-exact with `audioop.ulaw2lin`."""
    return _MULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]
