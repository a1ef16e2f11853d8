"""HLS streaming outputs: the player model on timelines with known answers, then real Gradio servers end to end."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench.media.hls_player import HLSJS_DEFAULT, LOW_LATENCY, Segment, play
from bench.runner import run_scenario
from bench.scenario import load_scenario

FPS = 10


def timeline(listed: list[float], duration: float = 1.0, fetch: float = 0.1, target=None) -> list[Segment]:
    """Segments of `duration` s with FPS frames a second, frame ids counting up; `target(i)` its target duration."""
    per = round(duration * FPS)
    return [
        Segment(
            index=i,
            listed_s=t,
            fetch_s=fetch,
            duration_s=duration,
            target_duration_s=target(i) if target else duration,
            frames=tuple((i * per + j, j / FPS) for j in range(per)),
        )
        for i, t in enumerate(listed)
    ]


def shown(playback, sample_id: int) -> float:
    return next(p.shown_s for p in playback.presented if p.sample_id == sample_id)


def test_late_segments_stall_playback_by_exactly_their_lateness():
    # listed at 0, 1, 2.5, 3, 5; fetched in 0.1 s: decoded at 0.1, 1.1, 2.6, 3.1, 5.1. Playing from 0.1, the
    # playhead reaches segment 2 at 2.1 (ready 2.6: stall 0.5), segment 3 at 3.6 (ready), segment 4 at 4.6
    # (ready 5.1: stall 0.5)
    playback = play(timeline([0.0, 1.0, 2.5, 3.0, 5.0]), start_s=0.0, policy=LOW_LATENCY)
    assert playback.rebuffers == 2
    assert playback.stalled_s == pytest.approx(1.0)
    assert playback.first_frame_s == pytest.approx(0.1)
    assert shown(playback, 10) == pytest.approx(1.1)  # on time: no stall
    assert shown(playback, 20) == pytest.approx(2.6)
    assert shown(playback, 29) == pytest.approx(3.5)  # real time within a segment
    assert shown(playback, 40) == pytest.approx(5.1)
    assert len(playback.presented) == 50


def test_an_hlsjs_reload_that_finds_nothing_new_waits_half_a_target_duration():
    # target duration 4 s, 1 s segments. hls.js loads the playlist twice at the start (manifest, then level): the
    # second finds nothing new, so the next load is 2 s (half of 4) later and finds segments 1 and 2; the load at
    # 3.0 misses segment 3 (listed at 3.05), so the next is at 5.0
    segments = timeline([-0.1, 1.0, 2.0, 3.05, 4.05], target=lambda i: 4.0)
    playback = play(segments, start_s=0.0, policy=HLSJS_DEFAULT, until_s=5.5)
    assert playback.reloads == pytest.approx([0.0, 0.0, 2.0, 3.0, 5.0])
    # segment 1: decoded 2.1, wanted 1.1; segment 3: decoded 5.1, wanted 4.1
    assert (playback.rebuffers, playback.stalled_s) == (2, pytest.approx(2.0))
    assert shown(playback, 10) == pytest.approx(2.1)
    assert shown(playback, 30) == pytest.approx(5.1)
    # a load lists what the server had when it answered, half a round trip after it was sent: with a 0.2 s round
    # trip the load sent at 3.0 (answered 3.1, back 3.2) sees segment 3, decoded at 3.3: before the playhead (held
    # back to 2.3 by the start's miss) reaches it at 4.3
    slow = play(segments, start_s=0.0, policy=HLSJS_DEFAULT, until_s=5.5, playlist_rtt_s=0.2)
    assert slow.reloads == pytest.approx([-0.2, 0.0, 2.0, 3.0, 4.0, 5.0])
    assert (slow.rebuffers, slow.stalled_s) == (1, pytest.approx(1.2))
    assert shown(slow, 30) == pytest.approx(4.3)
    # the ideal player sees each segment when listed: it stalls only for segment 3's own 0.05 s lateness
    low = play(segments, start_s=0.0, policy=LOW_LATENCY)
    assert (low.rebuffers, low.stalled_s) == (1, pytest.approx(0.05))


def test_low_latency_starts_at_the_live_edge_and_hlsjs_three_target_durations_behind():
    segments = timeline([float(t) for t in range(-10, 0)])  # 10 s of a constant 1 s target duration, all listed
    low = play(segments, start_s=0.0, policy=LOW_LATENCY)
    assert (low.start_segment, low.holdback_s) == (9, pytest.approx(1.0))
    assert low.first_frame_s == pytest.approx(0.1)  # the newest segment, decoded
    default = play(segments, start_s=0.0, policy=HLSJS_DEFAULT)
    assert (default.start_segment, default.holdback_s) == (7, pytest.approx(3.0))  # liveSyncDurationCount = 3
    # the extra 2 s of buffer delay every frame by 2 s more than the live-edge player
    assert shown(default, 90) - shown(low, 90) == pytest.approx(2.0)
    assert default.rebuffers == low.rebuffers == 0


def test_hlsjs_starts_mid_segment_and_skips_the_frames_before_its_position():
    segments = timeline([float(t) for t in range(-10, 0)], target=lambda i: 1.5)
    default = play(segments, start_s=0.0, policy=HLSJS_DEFAULT)
    # edge 10 - 3 x 1.5 = 5.5: inside segment 5, half a second in; its first 5 frames are never shown
    assert (default.start_segment, default.start_position_s) == (5, pytest.approx(5.5))
    assert min(p.sample_id for p in default.presented) == 55
    assert shown(default, 55) == pytest.approx(0.1)


def test_gradio_growing_target_duration_makes_hlsjs_start_at_the_first_segment():
    # Gradio lists EXT-X-TARGETDURATION 5 + segments so far: 3 of them always reach before the playlist's start
    segments = timeline([float(t) for t in range(-10, 0)], target=lambda i: 6.0 + i)
    default = play(segments, start_s=0.0, policy=HLSJS_DEFAULT)
    assert (default.start_segment, default.holdback_s) == (0, pytest.approx(10.0))


def test_a_segment_never_listed_ends_playback_without_counting_a_stall():
    segments = timeline([0.0, 1.0, 2.0])
    del segments[1]
    playback = play(segments, start_s=0.0, policy=LOW_LATENCY)
    assert {p.segment for p in playback.presented} == {0}
    assert playback.rebuffers == 0


# --- real servers ---------------------------------------------------------------------------------------------


def run(tmp_path: Path, body: str, name: str = "hls") -> dict:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\n' + body)
    scenario, resolved = load_scenario(path)
    return run_scenario(scenario, resolved, tmp_path / "runs").summary


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    body = (
        "duration_s = 5\nwarmup_s = 1\n"
        '[[targets]]\nname = "video"\nkind = "gradio-hls"\nshape = "video"\nmedia_format = ["ts", "mp4"]\n'
        "chunk_s = 0.5\nfps = 10\n"
        '[[targets]]\nname = "audio"\nkind = "gradio-hls"\nshape = "audio"\nmedia_format = "wav"\n'
        "chunk_s = 1\nfps = 5\n"
        '[[targets]]\nname = "camera"\nkind = "gradio-hls"\nshape = "camera"\ntransform = "flip"\n'
        "chunk_s = 0.5\nfps = 10\n"
    )
    cases = run(tmp_path_factory.mktemp("hls"), body)["cases"]
    return {c["target"] if c["target"] != "video" else c["params"]["media_format"]: c for c in cases}


@pytest.mark.slow
@pytest.mark.parametrize("case", ["ts", "mp4", "audio", "camera"])
def test_every_streamed_sample_is_timed_from_its_making_to_the_player(streamed: dict, case: str):
    measured = streamed[case]
    assert measured["status"] in ("ok", "degraded"), measured["status_reasons"]
    assert measured["n"] > 0
    metrics = measured["stream_metrics"]
    assert metrics["unknown_sample_ids"] == 0  # no marker ever read as an ID the target did not make
    assert measured["undecoded"] == 0
    chunk_s = 1.0 if case == "audio" else 0.5
    if case != "audio":  # the transform ran on every frame the player showed (camera: the browser's mirror undone)
        assert set(measured["orientations"]) == {"flip_ud" if case == "camera" else "identity"}
    for policy in ("hls.js default", "low latency"):
        # a live chunked source cannot beat its chunk: a chunk's first sample waits for the whole chunk to be made
        assert metrics[f"glass_to_glass_ms[{policy}]"]["p50"] > chunk_s * 1000
        assert metrics[f"first_frame_ms[{policy}]"]["n"] == 1
        rebuffers, stalled = metrics[f"rebuffers[{policy}]"], metrics[f"stalled_s[{policy}]"]
        assert (rebuffers > 0) == (stalled > 0)
    # the ideal player is never slower than hls.js on the same timeline
    default, low = (metrics[f"glass_to_glass_ms[{p}]"]["p50"] for p in ("hls.js default", "low latency"))
    assert low <= default + 1


@pytest.mark.slow
def test_without_ffmpeg_the_hls_case_fails_in_one_line_and_the_others_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = [d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "ffprobe").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    assert shutil.which("ffprobe") is None
    body = (
        "duration_s = 3\nwarmup_s = 1\n[source]\nwidth = 320\nheight = 240\n"
        '[[targets]]\nkind = "gradio-hls"\nchunk_s = 0.5\n'
        '[[targets]]\nkind = "gradio-stream"\nstream_every = 0.2\n'
    )
    cases = {c["target"]: c for c in run(tmp_path, body, "no-ffmpeg")["cases"]}
    assert cases["gradio-hls"]["status"] == "failed"
    assert "ffprobe not found on PATH" in cases["gradio-hls"]["error"]
    assert "\n" not in cases["gradio-hls"]["error"]
    assert cases["gradio-stream"]["status"] == "ok"
