"""The audio marker survives what FastRTC's transports do to audio, and never reports a wrong ID."""

from __future__ import annotations

import fractions
import time
import warnings

import av
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.io import wavfile
from scipy.signal import correlate, resample_poly

from bench.media.audio_marker import (
    MARKER_S,
    MAX_ID,
    SAMPLE_RATE,
    AudioMarkerDecoder,
    AudioMarkerReading,
    marker_waveform,
    mulaw_decode,
    mulaw_encode,
)
from bench.media.microphone import speech_file

PERIOD_S = 0.2  # 5 markers a second, the microphone's default
TOLERANCE_S = 0.001  # the brief: a marker's start within +-1 ms
EDGE_IDS = [0, 1, 0xFFFF, 0x10000, MAX_ID]


def _ids(count: int, seed: int = 7) -> list[int]:
    rng = np.random.default_rng(seed)
    return EDGE_IDS + [int(i) for i in rng.integers(0, MAX_ID + 1, count - len(EDGE_IDS))]


def _stream(ids: list[int], sample_rate: int = SAMPLE_RATE, gain: float = 1.0) -> tuple[np.ndarray, list[int]]:
    """Markers at jittered starts over -60 dBFS noise, float in [-1, 1], and where each marker starts."""
    rng = np.random.default_rng(3)
    audio = rng.normal(0.0, 0.001, round((len(ids) * PERIOD_S + 0.3) * sample_rate))
    starts = []
    for k, marker_id in enumerate(ids):
        start = round((0.05 + k * PERIOD_S) * sample_rate) + int(rng.integers(0, sample_rate // 100))
        burst = marker_waveform(marker_id, sample_rate)
        audio[start : start + len(burst)] += gain * burst
        starts.append(start)
    return audio, starts


def _decode_all(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, chunk: int = 960) -> list[AudioMarkerReading]:
    decoder = AudioMarkerDecoder(sample_rate)
    readings = []
    for i in range(0, len(audio), chunk):
        readings += decoder.feed(audio[i : i + chunk])
    return readings


def _opus(audio: np.ndarray, bit_rate: int, channels: int) -> np.ndarray:
    """Encode and decode with libopus as WebRTC does (48 kHz, 20 ms frames); first channel out."""
    layout = "stereo" if channels == 2 else "mono"
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format, encoder.bit_rate = SAMPLE_RATE, layout, "s16", bit_rate
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate, decoder.layout = SAMPLE_RATE, layout
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)
    frame_len = SAMPLE_RATE // 50
    out = []
    for i in range(0, len(pcm) - frame_len + 1, frame_len):
        interleaved = np.repeat(pcm[i : i + frame_len], channels)[None, :]
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, i, fractions.Fraction(1, SAMPLE_RATE)
        for packet in encoder.encode(frame):
            for decoded in decoder.decode(packet):
                samples = decoded.to_ndarray()
                first = samples[0] if decoded.format.is_planar else samples[0, ::channels]
                out.append(first / 32768 if first.dtype == np.int16 else first)
    return np.concatenate(out).astype(np.float32)


def _delay(received: np.ndarray, sent: np.ndarray) -> int:
    """The codec's delay in samples, measured by cross-correlating what came out with what went in."""
    n = min(len(received), len(sent), 2 * SAMPLE_RATE)
    lags = correlate(received[:n], sent[:n], mode="full", method="fft")
    return int(np.argmax(lags)) - (n - 1)


def _assert_all_found(readings: list[AudioMarkerReading], ids: list[int], starts: list[float], sample_rate: int):
    found = {r.marker_id: r.start_sample for r in readings}
    assert set(found) - set(ids) == set(), "a wrong ID was reported"
    assert len(readings) == len(found), "a marker was reported twice"
    assert set(found) == set(ids), f"missed {len(set(ids) - set(found))} of {len(ids)}"
    errors = np.array([found[i] - s for i, s in zip(ids, starts, strict=True)]) / sample_rate
    assert np.max(np.abs(errors)) <= TOLERANCE_S, f"start off by up to {np.max(np.abs(errors)) * 1e3:.2f} ms"


@pytest.mark.parametrize("gain", [0.3, 1.0])
@pytest.mark.parametrize(("bit_rate", "channels"), [(32000, 1), (32000, 2), (64000, 1), (64000, 2)])
def test_ids_and_starts_survive_opus(bit_rate: int, channels: int, gain: float) -> None:
    ids = _ids(60, seed=bit_rate + channels)
    sent, starts = _stream(ids, gain=gain)
    received = _opus(sent, bit_rate, channels)
    delay = _delay(received, sent)
    assert 0 < delay < SAMPLE_RATE // 50, "Opus delays by its look-ahead (a few ms), never more than a frame"
    _assert_all_found(_decode_all(received), ids, [s + delay for s in starts], SAMPLE_RATE)


@pytest.mark.parametrize("gain", [0.3, 1.0])
@pytest.mark.parametrize("sample_rate", [48000, 24000, 16000, 8000])
def test_ids_and_starts_survive_mulaw_after_resampling(sample_rate: int, gain: float) -> None:
    ids = _ids(60, seed=sample_rate)
    sent, starts = _stream(ids, gain=gain)
    resampled = resample_poly(sent, sample_rate, SAMPLE_RATE)  # zero-phase: starts scale exactly
    received = mulaw_decode(mulaw_encode(np.round(np.clip(resampled, -1, 1) * 32767).astype(np.int16)))
    scaled = [s * sample_rate / SAMPLE_RATE for s in starts]
    _assert_all_found(_decode_all(received, sample_rate, chunk=sample_rate // 50), ids, scaled, sample_rate)


def test_readings_do_not_depend_on_chunk_sizes() -> None:
    ids = _ids(12)
    audio, _ = _stream(ids)
    int16 = np.round(audio * 32767).astype(np.int16)
    reference = _decode_all(audio, chunk=len(audio))
    assert [r.marker_id for r in reference] == ids
    for chunk in (160, 480, 960, 1024, 4801):
        assert _decode_all(int16 if chunk % 2 else audio, chunk=chunk) == reference, chunk
    two = round(2 * PERIOD_S * SAMPLE_RATE)  # sample by sample is slow: two markers are enough
    assert _decode_all(audio[:two], chunk=1) == reference[:2]
    rng = np.random.default_rng(1)
    decoder = AudioMarkerDecoder()
    readings, position = [], 0
    while position < len(audio):
        size = int(rng.integers(1, 3000))
        readings += decoder.feed(audio[position : position + size])
        position += size
    assert readings == reference


def test_no_reading_in_a_minute_of_noise_and_speech() -> None:
    """Nothing but real speech, loud and quiet noise, hum and silence: any reading would be a wrong ID."""
    rate, speech = wavfile.read(speech_file())
    speech = resample_poly(speech / 32768, SAMPLE_RATE, rate)
    rng = np.random.default_rng(11)
    t = np.arange(10 * SAMPLE_RATE) / SAMPLE_RATE
    parts = [
        np.tile(speech, 2),  # ~41 s
        rng.normal(0, 0.3, 5 * SAMPLE_RATE),
        rng.normal(0, 0.001, 3 * SAMPLE_RATE),
        0.5 * np.sin(2 * np.pi * 1000 * t[: 3 * SAMPLE_RATE]),  # a tone the size of a marker's
        0.4 * np.sign(np.sin(2 * np.pi * 440 * t[: 3 * SAMPLE_RATE])),  # square wave: every harmonic
        np.zeros(5 * SAMPLE_RATE),
    ]
    audio = np.concatenate(parts)
    assert len(audio) >= 60 * SAMPLE_RATE
    assert _decode_all(audio) == []
    assert _decode_all(_opus(audio[: 20 * SAMPLE_RATE], 32000, 1)) == []


def test_damaged_markers_are_missed_never_misread() -> None:
    """Splices of two markers, a lost 20 ms packet, overlapping bursts, heavy noise: each may be
    missed (the CRC refuses it) or read as one of the IDs really there, never as another ID."""
    rng = np.random.default_rng(9)
    length = round(MARKER_S * SAMPLE_RATE)
    found = wrong = 0
    for trial in range(160):
        a, b = (int(v) for v in rng.integers(0, MAX_ID + 1, 2))
        first, second = marker_waveform(a), marker_waveform(b)
        damage = trial % 4
        if damage == 0:
            cut = int(rng.integers(length // 4, length))
            burst = np.concatenate([first[:cut], second[cut:]])
        elif damage == 1:
            burst = first.copy()
            lost = int(rng.integers(0, length))
            burst[lost : lost + SAMPLE_RATE // 50] = 0
        elif damage == 2:
            shift = int(rng.integers(1, length))
            burst = np.concatenate([first, np.zeros(shift)])
            burst[shift:length] += 0.8 * second[: length - shift]
        else:
            burst = first + rng.normal(0, 0.3, length)  # ~ -6 dB SNR
        audio = np.concatenate([rng.normal(0, 0.001, 1000), burst, rng.normal(0, 0.001, 3000)])
        readings = AudioMarkerDecoder().feed(audio)
        found += any(r.marker_id in (a, b) for r in readings)
        wrong += sum(r.marker_id not in (a, b) for r in readings)
    assert wrong == 0
    assert found >= 40  # the noisy quarter at least: 3000 trials read all noisy ones, 10-40 % of the rest


def test_decoder_costs_little_cpu() -> None:
    ids = _ids(100)
    audio, _ = _stream(ids)
    int16 = np.round(audio * 32767).astype(np.int16)
    started = time.process_time()
    readings = _decode_all(int16, chunk=480)
    cpu_per_s = (time.process_time() - started) / (len(audio) / SAMPLE_RATE)
    assert len(readings) == len(ids)
    # measured ~0.007 s of CPU per s of audio; the bound leaves room for a busy shared machine
    assert cpu_per_s < 0.05, f"{cpu_per_s:.3f} s of CPU per s of audio"


@settings(max_examples=40, deadline=None)
@given(
    marker_id=st.integers(0, MAX_ID),
    gain=st.floats(0.3, 1.0),
    lead=st.integers(0, 5000),
    sample_rate=st.sampled_from([8000, 16000, 24000, 48000]),
)
@example(marker_id=0, gain=1.0, lead=0, sample_rate=24000)  # reported once complete, no trailing audio needed
def test_any_id_round_trips(marker_id: int, gain: float, lead: int, sample_rate: int) -> None:
    burst = gain * marker_waveform(marker_id, sample_rate)
    assert burst.dtype == np.float32 and np.max(np.abs(burst)) <= 1.0
    assert len(burst) == round(MARKER_S * sample_rate)
    audio = np.concatenate([np.zeros(lead), burst])
    assert AudioMarkerDecoder(sample_rate).feed(audio) == [AudioMarkerReading(marker_id, lead)]


def test_out_of_range_ids_and_stereo_input_are_refused() -> None:
    with pytest.raises(ValueError):
        marker_waveform(MAX_ID + 1)
    with pytest.raises(ValueError):
        marker_waveform(-1)
    with pytest.raises(ValueError, match="mono"):
        AudioMarkerDecoder().feed(np.zeros((960, 2), dtype=np.int16))


@given(st.lists(st.integers(-32768, 32767), max_size=200))
def test_mulaw_round_trip_error_is_bounded(samples: list[int]) -> None:
    pcm = np.array(samples, dtype=np.int16)
    encoded = mulaw_encode(pcm)
    assert len(encoded) == len(pcm)
    error = np.abs(mulaw_decode(encoded).astype(int) - pcm.astype(int))
    # G.711: a step of 8 near zero doubling each segment, i.e. at most |x| / 16 (+ the clip at 32124)
    assert np.all(error <= np.maximum(8, np.abs(pcm.astype(int)) / 16 + 4) + np.maximum(0, np.abs(pcm) - 32124))


def test_mulaw_is_bit_exact_with_audioop() -> None:
    """fastrtc's WebSocket path uses audioop, so ours must produce and read the very same bytes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    every = np.arange(-32768, 32768, dtype=np.int16)
    assert mulaw_encode(every) == audioop.lin2ulaw(every.tobytes(), 2)
    codes = bytes(range(256))
    assert np.array_equal(mulaw_decode(codes), np.frombuffer(audioop.ulaw2lin(codes, 2), dtype=np.int16))
