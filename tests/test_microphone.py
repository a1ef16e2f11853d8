"""The virtual microphones' clocks agree with their samples, so audio latency can be trusted."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from bench.media.audio_marker import MARKER_S, AudioMarkerDecoder
from bench.media.microphone import NOISE_RMS, SpeechMicrophone, VirtualMicrophone

T0 = 1000.0


@pytest.mark.parametrize(("sample_rate", "markers_per_s"), [(48000, 5.0), (16000, 5.0), (8000, 3.3)])
def test_markers_sit_where_capture_time_says(sample_rate: int, markers_per_s: float) -> None:
    mic = VirtualMicrophone(markers_per_s, sample_rate)
    mic.start(T0)
    chunk = sample_rate // 50
    decoder = AudioMarkerDecoder(sample_rate)
    readings = []
    for start in range(0, 4 * sample_rate, chunk):
        block = mic.pcm(start, chunk)
        assert block.dtype == np.int16 and block.shape == (chunk,)
        readings += decoder.feed(block)
    assert [r.marker_id for r in readings] == list(range(len(readings)))
    assert len(readings) >= int(3.9 * markers_per_s)
    for reading in readings:
        # the marker's first sample is captured when capture_time says: to the sample
        assert mic.sample_time(reading.start_sample) == pytest.approx(mic.capture_time(reading.marker_id), abs=1e-9)
        assert abs(mic.capture_time(reading.marker_id) - (T0 + reading.marker_id / markers_per_s)) <= 0.5 / sample_rate
        assert mic.marker_at(reading.start_sample, 1) == [reading.marker_id]
        assert mic.marker_at(reading.start_sample + 1, chunk) == []


def test_pcm_is_deterministic_and_independent_of_chunking() -> None:
    mic = VirtualMicrophone()
    whole = mic.pcm(0, 48000)
    pieces = np.concatenate([mic.pcm(0, 1000), mic.pcm(1000, 9017), mic.pcm(10017, 48000 - 10017)])
    assert np.array_equal(whole, pieces)
    assert np.array_equal(VirtualMicrophone().pcm(123456, 5000), mic.pcm(123456, 5000))
    quiet = mic.pcm(round(MARKER_S * 48000) + 100, 4000).astype(float) / 32768  # between two bursts
    assert 0.5 * NOISE_RMS < np.sqrt(np.mean(quiet**2)) < 2 * NOISE_RMS, "quiet noise, not digital silence"


def test_clock_and_marker_lists_agree() -> None:
    mic = VirtualMicrophone(markers_per_s=5.0)
    with pytest.raises(RuntimeError):
        _ = mic.started
    mic.start(T0)
    assert mic.fps == 5.0 and mic.started == T0
    assert mic.latest_sample(T0 + 1.0) == 48000 and mic.latest_sample(T0 - 1.0) == 0
    assert mic.sample_time(48000) == pytest.approx(T0 + 1.0)
    times = mic.capture_times(T0 + 1.0)
    assert list(times) == [0, 1, 2, 3, 4, 5]  # marker 5 starts exactly at 1 s
    assert times[3] == pytest.approx(T0 + 0.6)
    assert mic.marker_at(0, 48000) == [0, 1, 2, 3, 4]
    assert mic.marker_at(1, 9600) == [1]
    with pytest.raises(ValueError):
        VirtualMicrophone(markers_per_s=20.0)  # bursts would overlap


def test_wait_until_sample_returns_once_it_is_captured() -> None:
    mic = VirtualMicrophone()
    mic.start()
    target = mic.latest_sample() + 2400  # 50 ms ahead
    asyncio.run(mic.wait_until_sample(target))
    assert time.perf_counter() >= mic.sample_time(target)
    assert mic.latest_sample() >= target


@pytest.mark.parametrize(("gap_s", "sample_rate"), [(2.5, 48000), (1.0, 16000)])
def test_speech_utterances_are_separated_by_the_gap(gap_s: float, sample_rate: int) -> None:
    mic = SpeechMicrophone(gap_s=gap_s, sample_rate=sample_rate)
    mic.start(T0)
    assert len(mic.utterances) >= 5
    for onset, offset in mic.utterances:
        assert 1.5 * sample_rate <= offset - onset <= 4.5 * sample_rate
    # the silence after each utterance, including the one that wraps round the loop
    ends = [offset for _, offset in mic.utterances]
    next_onsets = [onset for onset, _ in mic.utterances[1:]] + [mic.utterances[0][0] + mic.loop_len]
    for end, onset in zip(ends, next_onsets, strict=True):
        assert onset - end >= gap_s * sample_rate
    # what pcm() carries: speech up to the offset, then only the noise floor
    window = sample_rate // 100
    for k in range(len(mic.utterances) + 1):  # one utterance of the second loop too
        onset = round((mic.onset_time(k) - T0) * sample_rate)
        offset = round((mic.capture_time(k) - T0) * sample_rate)
        assert mic.capture_time(k) - mic.onset_time(k) >= 1.5
        speech = mic.pcm(offset - round(0.3 * sample_rate), round(0.3 * sample_rate)).astype(float) / 32768
        after = mic.pcm(offset + window, round(gap_s * sample_rate) - 2 * window).astype(float) / 32768
        before = mic.pcm(onset - round(0.3 * sample_rate), round(0.3 * sample_rate) - window).astype(float) / 32768
        assert np.sqrt(np.mean(speech**2)) > 10 * NOISE_RMS
        assert np.sqrt(np.mean(after**2)) < 2 * NOISE_RMS and np.sqrt(np.mean(before**2)) < 2 * NOISE_RMS
    assert mic.fps == pytest.approx(len(mic.utterances) * sample_rate / mic.loop_len)
    assert list(mic.capture_times(mic.capture_time(2))) == [0, 1, 2]
