"""Received audio -> Receipts, for every client that gets marker audio back (WebRTC, FastRTC's WebSocket).

A marker is received when its first sample is: the arrival time of the chunk
holding that sample plus the sample's offset in the chunk / sample rate. A
20 ms packet then does not quantise latency, and the same path reads the same
latency wherever in a packet the marker happened to start.
"""

from __future__ import annotations

import bisect
from collections import deque

import numpy as np

from bench.media.audio_marker import SAMPLE_RATE, AudioMarkerDecoder
from bench.records import Receipt

KEEP_S = 2.0  # chunk arrival times kept: a marker completes (and is decoded) ~0.1 s after its first sample


class AudioReceipts:
    """One user's received audio stream: decodes markers and times each one's first sample."""

    def __init__(self, user: int, receipts: list[Receipt], sample_rate: int = SAMPLE_RATE) -> None:
        self.user = user
        self.receipts = receipts
        self.sample_rate = sample_rate
        self.decoder = AudioMarkerDecoder(sample_rate)
        self.fed = 0  # samples received so far
        self.chunks: deque[tuple[int, float]] = deque()  # (stream index of a chunk's first sample, arrival)
        self.offsets: list[float] = []  # per chunk: arrival - its stream time (s), for the jitter a playout sees

    def feed(self, mono: np.ndarray, arrival_s: float) -> int:
        """Take one received chunk of mono audio (int16, or float in [-1, 1]); returns the markers it completed."""
        self.chunks.append((self.fed, arrival_s))
        self.offsets.append(arrival_s - self.fed / self.sample_rate)
        self.fed += len(mono)
        readings = self.decoder.feed(mono)
        starts = [start for start, _ in self.chunks]
        for reading in readings:
            start, arrival = self.chunks[max(0, bisect.bisect_right(starts, reading.start_sample) - 1)]
            recv_s = arrival + (reading.start_sample - start) / self.sample_rate
            self.receipts.append(Receipt(self.user, reading.marker_id, recv_s))
        while len(self.chunks) > 1 and self.chunks[1][0] <= self.fed - KEEP_S * self.sample_rate:
            self.chunks.popleft()
        return len(readings)

    def arrival_jitter_ms(self) -> list[float]:
        """Each chunk's lateness against the earliest one, on the stream's own clock (ms).

        What a receiver playing the audio out at a steady rate must buffer for a chunk to be on
        time: its p95 is about what a browser's jitter buffer holds back. Lost chunks and a growing
        backlog show as lateness too.
        """
        if not self.offsets:
            return []
        earliest = min(self.offsets)
        return [(offset - earliest) * 1000 for offset in self.offsets]


def mix_to_mono(interleaved: np.ndarray, channels: int) -> np.ndarray:
    """Float mono in [-1, 1] of interleaved int16 samples (the marker decoder takes one channel)."""
    samples = interleaved.reshape(-1, channels).astype(np.float32) / 32768
    return samples.mean(axis=1) if channels > 1 else samples[:, 0]
