"""aiortc client for FastRTC ReplyOnPause voice apps: a user who speaks, waits for the answer, and speaks again.

Per user: the browser's signalling (`_rtc_session`: "text" data channel before the
offer, "handshake", `webrtc_id`, rejected and failed sessions recorded, never
raised), a microphone track sending the speech microphone's timeline (utterances,
quiet between them) in 20 ms s16 frames at 48 kHz in real time, and every returned
audio frame and data-channel message timed on arrival. Received packets go to the
decoder as they arrive, as in the WebRTC audio client (aiortc's own buffer would
also keep the last 80 ms of each reply until the next reply pushes them out).

A turn is utterance i. Its sample is sent when the frame holding its last speech
sample is; its capture time is that sample's (the end of speech). ReplyOnPause
announces each turn on the data channel (fastrtc 0.0.34 `reply_on_pause.py`):
`started_talking` when a VAD chunk first holds speech, `pause_detected` when it
calls the handler, `response_starting` with every audio yield. A pause answers the
utterance its `started_talking` fell in: turn i's if it came after utterance i ended,
else the VAD cut the user off mid-utterance (counted as `premature_pauses`; fastrtc
replies to the fragment). Turn i owns what comes back from its pause to the next
pause, so reply audio still playing when the next utterance starts belongs to the
turn it follows. Its receipt is the first sample above -40 dBFS received in that span
(frame arrival + offset / sample rate): voice-to-voice latency. Its stages are the
consecutive spans end of speech -> `pause_detected` (`pause_wait_ms`) -> the turn's first
`response_starting` (`to_response_start_ms`) -> first reply audio (`to_reply_audio_ms`).
When the user speaks over a reply until the next pause, fastrtc cuts that reply and
starts the next; the cut reply's packets still in flight arrive after the pause, so
the new reply is looked for from its `response_starting` on (fastrtc sends it before
handing the audio over): with a handler that answers at once (echo) a few ms of the
cut reply may still be taken for the new one. Such turns count as `barge_in_turns`.
The track's lateness (a frame sent after its last sample was captured) is the
client's own lag, `tick_lag_ms`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack, RTCDataChannel
from av import AudioFrame

from bench.clients._rtc_session import GRACE_S, RTCSession, run_sessions
from bench.clients._rtc_tracks import MicrophoneTrack
from bench.clients.base import ClientConfig, stalled
from bench.clients.webrtc_audio import release_audio_on_arrival
from bench.media.microphone import SpeechMicrophone
from bench.records import ClientResult, Receipt, Send

LOUD = round(32768 * 10 ** (-40 / 20))  # a received sample above -40 dBFS is reply audio, not the quiet floor
REPLY_WAIT_S = 8.0  # after the run: keep the microphone on and listen this long at most for the last turn's reply
VOICE_STALL_S = 15.0  # no reply audio and no data-channel message for this long while the user speaks: stalled
REPLY_OVER_S = 0.2  # no reply packet for this long (they come every 20 ms while it plays): the reply is over
BARGE_IN_S = 0.1  # reply audio arriving this close before a turn's pause_detected: the user spoke over a reply


@dataclass
class TurnLog:
    """What one user's session heard, as (arrival perf_counter s, ...) in arrival order."""

    events: list[tuple[float, str]] = field(default_factory=list)  # ReplyOnPause's "log" messages
    frames: list[tuple[float, float, float | None]] = field(default_factory=list)  # (arrival, seconds, first loud)


@dataclass
class Turns:
    """A session's turns: receipts and the stream metrics they give."""

    receipts: list[Receipt] = field(default_factory=list)
    reply_audio_s: list[float] = field(default_factory=list)
    started_talking_ms: list[float] = field(default_factory=list)
    barge_in_turns: int = 0
    premature_pauses: int = 0  # pause_detected while the user was still mid-utterance: a reply that cut in


def read_turns(log: TurnLog, mic: SpeechMicrophone, user: int, last_turn: int) -> Turns:
    """Attribute what came back to turns 0..`last_turn` (utterances ended by the end of the run).

    A `pause_detected` answers the speech since the `started_talking` before it: that utterance's
    turn if it has ended by then, else the VAD cut the user off mid-utterance (a premature pause).
    """
    turns = Turns()
    pauses: dict[int, float] = {}  # turn -> its pause_detected arrival
    boundaries: list[float] = []  # every pause_detected: fastrtc starts a new reply (and cuts the old one) at each
    talking = -1  # the utterance the last started_talking fell in
    for at, name in log.events:
        if name == "started_talking":
            turn = _latest(mic.onset_time, at)
            if turn > talking:  # the first started_talking in this utterance
                if turn <= last_turn:
                    turns.started_talking_ms.append((at - mic.onset_time(turn)) * 1000)
                talking = turn
        elif name == "pause_detected":
            boundaries.append(at)
            turn = talking if talking >= 0 else _latest(mic.capture_time, at)
            if turn < 0 or at < mic.capture_time(turn):
                turns.premature_pauses += 1
            elif turn not in pauses:
                pauses[turn] = at
    arrivals = [arrival for arrival, _, _ in log.frames]
    for turn, paused in sorted(pauses.items()):
        until = next((at for at in boundaries if at > paused), float("inf"))
        starting = next((at for at, name in log.events if name == "response_starting" and paused <= at < until), None)
        # the reply's audio leaves after its response_starting; what arrives before is the cut reply's tail
        first_frame = bisect.bisect_left(arrivals, paused if starting is None else starting)
        span = log.frames[first_frame : bisect.bisect_left(arrivals, until)]
        first = next(((index, loud) for index, (_, _, loud) in enumerate(span) if loud is not None), None)
        if turn > last_turn or first is None:
            continue
        index, heard = first
        end = mic.capture_time(turn)
        # consecutive spans that add up to voice-to-voice, so reports can stack them
        stages = {"pause_wait_ms": (paused - end) * 1000}
        if starting is not None:
            stages["to_response_start_ms"] = (starting - paused) * 1000
        stages["to_reply_audio_ms"] = (heard - (paused if starting is None else starting)) * 1000
        turns.receipts.append(Receipt(user, turn, heard, stages))
        turns.reply_audio_s.append(sum(seconds for _, seconds, _ in span[index:]))
        playing = bisect.bisect_left(arrivals, paused) - 1  # the server sends nothing when idle
        if playing >= 0 and paused - arrivals[playing] < BARGE_IN_S:
            turns.barge_in_turns += 1
    return turns


def _latest(time_of: Callable[[int], float], at: float) -> int:
    """The last utterance whose `time_of(i)` (onset or end) is at or before `at`; -1 if none."""
    turn = -1
    while time_of(turn + 1) <= at:
        turn += 1
    return turn


class SpeechTrack(MicrophoneTrack):
    """Sends the speech microphone, quiet between utterances included, as a browser's microphone does.

    The VAD needs the quiet to hear the pause. Utterance i counts as sent when the
    frame holding its last speech sample goes to the encoder.
    """

    microphone: SpeechMicrophone

    def __init__(self, mic: SpeechMicrophone, user: int, stop_at: float, result: ClientResult) -> None:
        super().__init__(mic, user, stop_at)
        self.sends, self.lag_ms = result.sends, result.tick_lag_ms
        self.next_turn = 0

    def sent(self, start: int, now: float) -> None:
        mic = self.microphone
        frame_end = mic.sample_time(start + self.samples)
        self.lag_ms.append((now - frame_end) * 1000)
        while (end := mic.capture_time(self.next_turn)) < frame_end:
            if end >= mic.sample_time(start):  # an utterance that ended before we started streaming was not sent
                self.sends.append(Send(self.user, self.next_turn, now))
            self.next_turn += 1


class VoiceClient:
    def __init__(self) -> None:
        self.candidate_pairs: dict[int, str | None] = {}  # user -> nominated ICE pair of the last run
        self.messages: dict[int, list[tuple[float, Any]]] = {}  # user -> every data-channel message, parsed

    async def run(self, camera: SpeechMicrophone, config: ClientConfig) -> ClientResult:
        """`camera` is the case's source: a speech microphone (the runner's name for every source)."""
        result = ClientResult()
        release_audio_on_arrival()
        sessions = await run_sessions(_VoiceSession, camera, config, result, self.candidate_pairs)
        result.metrics.update(turns=0, barge_in_turns=0, premature_pauses=0, reply_audio_s=[], started_talking_ms=[])
        for session in sessions:
            self.messages[session.user] = session.messages
            turns = read_turns(session.log, camera, session.user, session.last_turn)
            result.receipts += turns.receipts
            result.metrics["turns"] += len(turns.receipts)
            result.metrics["barge_in_turns"] += turns.barge_in_turns
            result.metrics["premature_pauses"] += turns.premature_pauses
            result.metrics["reply_audio_s"] += turns.reply_audio_s
            result.metrics["started_talking_ms"] += turns.started_talking_ms
        return result


class _VoiceSession(RTCSession):
    kind = "audio"
    noun = "reply audio"
    source: SpeechMicrophone

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.log = TurnLog()
        self.messages: list[tuple[float, Any]] = []
        self.last_event_s = 0.0
        self.last_turn = _latest(self.source.capture_time, self.stop_at)  # the turns this run measures
        self.track = SpeechTrack(self.source, self.user, self.stop_at + GRACE_S + REPLY_WAIT_S, self.result)
        create_channel = self.pc.createDataChannel

        def create_listening_channel(*args: Any, **kwargs: Any) -> RTCDataChannel:
            """The session opens the browser's "text" channel; ReplyOnPause's messages come back on it."""
            channel = create_channel(*args, **kwargs)
            channel.on("message", self._on_message)
            return channel

        self.pc.createDataChannel = create_listening_channel  # type: ignore[method-assign]

    def local_track(self) -> MediaStreamTrack:
        return self.track

    def on_media(self, frame: AudioFrame) -> None:
        samples = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > LOUD)
        first = self.last_media_s + loud[0] / frame.sample_rate if loud.size else None
        self.log.frames.append((self.last_media_s, frame.samples / frame.sample_rate, first))

    async def _stream(self) -> None:
        """The run's duration, then up to REPLY_WAIT_S more while a measured turn still waits for its reply."""
        await super()._stream()
        deadline = self.stop_at + GRACE_S + REPLY_WAIT_S
        while self._healthy and self.pc.connectionState == "connected" and time.perf_counter() < deadline:
            if not self._waiting():
                return
            await asyncio.sleep(0.05)

    def _waiting(self) -> bool:
        """The last measured turn has no reply yet, or its reply is still playing (its length is a metric)."""
        if self.last_turn < 0:
            return False
        turns = read_turns(self.log, self.source, self.user, self.last_turn)
        answered = self.last_turn in {r.sample_id for r in turns.receipts}
        return not answered or time.perf_counter() - self.last_media_s < REPLY_OVER_S

    async def _stalled(self, now: float) -> str | None:
        """A voice app is silent between turns: stalled only when nothing at all came for VOICE_STALL_S."""
        silent = now - max(self.last_media_s, self.last_event_s, self.connected_s)
        if silent > VOICE_STALL_S:
            why = f"{stalled(self.config)}{self._vad_hint}"
            return f"no reply audio and no data-channel message for {silent:.1f} s ({why})"
        return await self._probe(now, silent, "nothing came back")

    @property
    def _vad_hint(self) -> str:
        """What the events say about a silent ReplyOnPause app's VAD (a wrong model fails without an error)."""
        heard = {name for _, name in self.log.events}
        if "started_talking" not in heard:
            return "; it never reported started_talking: its VAD hears no speech"
        if "pause_detected" not in heard:
            return "; it reported started_talking but never pause_detected: its VAD hears no pause"
        return ""

    def _on_message(self, message: str | bytes) -> None:
        at = self.last_event_s = time.perf_counter()
        with contextlib.suppress(ValueError, TypeError):
            message = json.loads(message)
        self.messages.append((at, message))
        if isinstance(message, dict) and message.get("type") == "log" and isinstance(message.get("data"), str):
            self.log.events.append((at, message["data"]))
