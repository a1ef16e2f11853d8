"""HLS player model: when would a player present each frame of a live playlist?

The client measures one timeline per session: when each segment was first
listed in the playlist, how long it took to download and decode, its duration
and the frames in it. A player turns that into presentation times, and players
differ in when they look at the playlist, where they start and how much they
buffer, so one measured timeline is replayed through each policy:

- "hls.js default": what Gradio's frontend runs. Its `new Hls({maxBufferLength: 1,
  maxMaxBufferLength: 1, lowLatencyMode: true})` (js/video Video.svelte,
  js/audio AudioPlayer.svelte) keeps hls.js's live defaults; lowLatencyMode
  changes nothing on a playlist without LL-HLS parts. As hls.js 1.5.13 (the
  version Gradio 5.50 bundles) does it:
  * playlist reloads (`computeReloadInterval`, `playlistLoaded`): the next
    reload is one last-segment duration after the previous one when the
    playlist changed, half the EXT-X-TARGETDURATION when it did not (a miss);
    the start is a miss too: the playlist is loaded as the manifest, then at
    once again as the level;
  * start (`liveSyncPosition`, liveSyncDurationCount = 3): 3 target durations
    behind the live edge, clamped to [first segment, edge - 1 target duration];
    a position before the first segment starts at the first segment.
    Gradio's EXT-X-TARGETDURATION grows by one per segment (docs/PROTOCOLS.md),
    so 3 of them always reach past the start of its playlist: the player starts
    at the first segment, and each miss costs half of a target duration that
    keeps growing.
- "low latency": the floor for any player of this playlist. It learns of a
  segment the moment it is listed (as LL-HLS blocking playlist reloads would,
  which Gradio does not offer), starts at the newest segment listed when it
  loads the playlist, and buffers nothing beyond the segment it plays.

Both fetch segments one at a time in order, as soon as they know of them, and
play at real time from the first decoded segment. When the playhead reaches a
segment that is not decoded yet, playback stalls (a rebuffer) until it is, then
resumes where it stopped: neither skips ahead or speeds up to catch up
(hls.js's default maxLiveSyncPlaybackRate is 1, liveMaxLatencyDurationCount is
infinite). Simplifications: every playlist load takes the round trip the client
measured (it lists what was listed half of that after it was sent); the reload
interval assumes the playhead is within 4 target durations of the live edge
(hls.js uses the full target duration beyond that); fetching is not held back
by maxBufferLength (it only delays fetches more than 1 s ahead of the playhead,
which changes no presentation time unless a fetch takes longer than that).

Checked against headless Chromium 156 running Gradio 5.50's own page on a
loaded 2-core machine (ts chunks of 0.5 and 1 s, 14 s each, the model fed the
page's own segment download times): its playlist loads came within 20 ms of the
modelled ones (all but one, 90 ms late), it stalled where the model did, and it
showed frames a median 80 / 230 ms later than modelled - its own transmux,
decode and render. A reload sent within tens of ms of a listing can go either
way, so whether a given reload misses is a matter of chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

HLSJS_SYNC_COUNT = 3  # hls.js liveSyncDurationCount
EPSILON_S = 1e-6  # waits shorter than this are float noise, not rebuffers
MIN_RELOAD_S = 0.001  # a zero-duration segment would make hls.js reload at once, one round trip after another


@dataclass(frozen=True)
class Segment:
    """One segment as the client measured it; times are perf_counter seconds."""

    index: int  # position in the playlist
    listed_s: float  # first seen in the playlist
    fetch_s: float  # download + decode, from the moment a player asks for it
    duration_s: float  # EXTINF
    target_duration_s: float  # EXT-X-TARGETDURATION of the playlist that first listed it
    frames: tuple[tuple[int, float], ...] = ()  # (sample id, offset in s from the segment's start)


@dataclass(frozen=True)
class Policy:
    """How a player follows a live playlist."""

    name: str
    sync_count: float | None  # start this many target durations behind the edge; None: at the newest segment
    hlsjs_reloads: bool  # learn of segments at hls.js's playlist reloads; False: the moment they are listed


HLSJS_DEFAULT = Policy("hls.js default", HLSJS_SYNC_COUNT, True)
LOW_LATENCY = Policy("low latency", None, False)
POLICIES = (HLSJS_DEFAULT, LOW_LATENCY)


@dataclass(frozen=True)
class Presentation:
    sample_id: int
    segment: int
    shown_s: float
    ready_s: float  # its segment was decoded


@dataclass
class Playback:
    """What one policy's player did with the measured timeline."""

    policy: str
    start_segment: int | None = None
    start_position_s: float | None = None  # media time where playback started
    holdback_s: float | None = None  # live edge minus start position, when the player started
    presented: list[Presentation] = field(default_factory=list)
    rebuffers: int = 0
    stalled_s: float = 0.0
    reloads: list[float] = field(default_factory=list)  # playlist loads (hls.js reload schedule)

    @property
    def first_frame_s(self) -> float | None:
        return min((p.shown_s for p in self.presented), default=None)


def play(
    segments: Sequence[Segment],
    start_s: float,
    policy: Policy,
    until_s: float | None = None,
    playlist_rtt_s: float = 0.0,
) -> Playback:
    """Replay `segments` through `policy`'s player, which has its first playlist at `start_s`.

    A playlist load sent at t lists what was listed by t + rtt / 2 (when the server answers) and is back at
    t + rtt. `until_s` is when the client stopped reading the playlist (default: the last listing). Segments are
    the playlist from its first segment, in order; playback stops at a segment missing from the timeline.
    """
    ordered = sorted(segments, key=lambda s: s.index)
    playback = Playback(policy.name)
    if not ordered:
        return playback
    end_s = max(until_s if until_s is not None else ordered[-1].listed_s, start_s)
    if policy.hlsjs_reloads:
        playback.reloads = _hlsjs_reloads(ordered, start_s, end_s, playlist_rtt_s)
        known = _discovery(ordered, playback.reloads, playlist_rtt_s)
    else:
        known = {s.index: max(s.listed_s, start_s) for s in ordered}
    if not known:
        return playback
    first_load = min(known.values())
    positions = _positions(ordered)
    listed = [s for s in ordered if known.get(s.index, float("inf")) <= first_load]
    start, position, edge = _start(listed, positions, policy)
    playback.start_segment, playback.start_position_s, playback.holdback_s = start.index, position, edge - position
    _present(playback, [s for s in ordered if s.index >= start.index], known, position - positions[start.index])
    return playback


def _hlsjs_reloads(segments: list[Segment], start_s: float, end_s: float, rtt_s: float) -> list[float]:
    """When hls.js 1.5.13 sends each playlist load (`playlistLoaded`): one last-segment duration after the previous
    one when that one brought new segments, half a target duration after it when it did not (a miss).

    Given a media playlist, hls.js loads it twice at the start: as the manifest (back at `start_s`), then at once
    as the level. The second load finds nothing new, a miss, so the third goes half a target duration later
    (Chromium running Gradio's frontend: loads at 0, +0.03 s, +3.03 s with EXT-X-TARGETDURATION 6).

    Loads go on past `end_s` (when the client stopped reading) until one has found every segment the client saw
    listed: the player would still have found them, and when matters for the frames made before the window closed.
    """
    loads = [start_s - rtt_s]
    seen = _listed_by(segments, loads[0] + rtt_s / 2)
    t = start_s
    while t <= end_s or loads[-1] + rtt_s / 2 < segments[-1].listed_s:
        loads.append(t)
        listed = _listed_by(segments, t + rtt_s / 2)
        updated, seen = len(listed) != len(seen), listed
        target = (listed[-1] if listed else segments[0]).target_duration_s
        if not updated:
            interval = target / 2
        elif listed:
            interval = min(target, listed[-1].duration_s)
        else:
            interval = target
        t += max(interval, rtt_s, MIN_RELOAD_S)  # the next load is scheduled once this one is back
    return loads


def _listed_by(segments: list[Segment], t: float) -> list[Segment]:
    return [s for s in segments if s.listed_s <= t]


def _discovery(segments: list[Segment], loads: list[float], rtt_s: float) -> dict[int, float]:
    """When the player has each segment's listing: back from the first load that saw it; a segment listed after
    the last load stays unknown."""
    known: dict[int, float] = {}
    for segment in segments:
        load = next((t for t in loads if t + rtt_s / 2 >= segment.listed_s), None)
        if load is not None:
            known[segment.index] = load + rtt_s
    return known


def _positions(segments: Sequence[Segment]) -> dict[int, float]:
    """Media start position of each segment: the playlist's durations laid end to end from 0."""
    positions, position = {}, 0.0
    for segment in segments:
        positions[segment.index] = position
        position += segment.duration_s
    return positions


def _start(listed: list[Segment], positions: dict[int, float], policy: Policy) -> tuple[Segment, float, float]:
    """The segment and media position the player starts at, and the live edge it saw then."""
    newest = listed[-1]
    edge = positions[newest.index] + newest.duration_s
    if policy.sync_count is None:
        return newest, positions[newest.index], edge
    first = positions[listed[0].index]
    target = newest.target_duration_s
    # liveSyncPosition = min(max(edge - playlist duration, edge - count * target), edge - target)
    sync = min(max(first, edge - policy.sync_count * target), edge - target)
    position = max(sync, first)  # before the first segment: hls.js loads the first one and plays from its start
    start = max((s for s in listed if positions[s.index] <= position + EPSILON_S), key=lambda s: s.index)
    return start, position, edge


def _present(playback: Playback, segments: list[Segment], known: dict[int, float], offset: float) -> None:
    """Fetch in order, play at real time from the first decoded segment (from `offset` into it), stall when the
    next segment is not decoded by the time the playhead reaches it."""
    ready = float("-inf")
    clock = 0.0  # when the playhead reaches the current segment's start
    for n, segment in enumerate(segments):
        if segment.index not in known or (n and segment.index != segments[n - 1].index + 1):
            break  # a segment never learned of, or missing from the timeline: playback cannot pass it
        ready = max(known[segment.index], ready) + segment.fetch_s
        skip = offset if n == 0 else 0.0
        if n == 0:
            clock = ready - skip  # playback begins as soon as the first segment is decoded
        elif ready > clock + EPSILON_S:
            playback.rebuffers += 1
            playback.stalled_s += ready - clock
            clock = ready
        for sample_id, frame_offset in segment.frames:
            if frame_offset + EPSILON_S >= skip:  # frames before the start position are decoded, never shown
                playback.presented.append(Presentation(sample_id, segment.index, clock + frame_offset, ready))
        clock += segment.duration_s
