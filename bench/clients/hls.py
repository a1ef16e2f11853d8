"""Client for Gradio streaming outputs (`gr.Video` / `gr.Audio(streaming=True)`) served as HLS (docs/PROTOCOLS.md).

What the browser does: join the queue with the event's inputs, follow the SSE
stream; the first `process_generating` message carries the output's playlist
URL (`/gradio_api/stream/{session_hash}/{run}/{component_id}/playlist.m3u8`,
an EVENT playlist), which the page hands to hls.js. Stop is `POST /cancel`.

What this client measures instead of playing: it reads the playlist every
POLL_S and right after every `process_generating` message (each yield lists one
segment); a segment first seen in a read was listed by the time the server
answered it, taken as half the read's round trip. It downloads and decodes
every new segment at once, in order, reading each frame's marker (or each audio
marker burst) and its presentation offset. That one timeline is replayed
through each player policy (bench.media.hls_player): when an hls.js player, or
an ideal low-latency one, would have learned of each segment, fetched it, and
shown each frame. Frames are timed from when the target made them (GET
/stamps: perf_counter seconds, CLOCK_MONOTONIC, one clock for every process on
this host) to when the policy's player shows them. With shape "camera" the
frames are this client's own camera's: it also does what the page's webcam
does (the `.stream()` event joins with the first frame, then the newest frame
every stream_every s over the websocket, docs/PROTOCOLS.md), and times each
frame from its capture.

After the case's window the client keeps reading for DRAIN_S plus one segment
duration, so frames made before the window closed can still be listed and
fetched; their presentation times come from the model, not from a wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import av
import httpx
import m3u8
import numpy as np
import websockets

from bench.clients.base import ClientConfig, stalled
from bench.clients.gradio_config import (
    StreamEvent,
    discover_stream_event,
    event_choice,
    get_config,
    input_labels,
    page_values,
)
from bench.clients.gradio_stream import connect_like_a_browser, unmirror, webcam_payload
from bench.errors import ProtocolError
from bench.media.audio_marker import AudioMarkerDecoder
from bench.media.camera import VirtualCamera
from bench.media.hls_player import HLSJS_DEFAULT, POLICIES, Playback, Segment, play
from bench.media.marker import decode_marker
from bench.records import CLIENT_ERROR, ClientResult, Receipt, Send, SessionRecord

POLL_S = 0.05  # playlist reads between SSE messages: bounds how late a listing is seen
DRAIN_S = 1.0  # after the window, beyond one segment duration: the chunk in progress gets listed and fetched
MAX_DRAIN_SEGMENT_S = 10.0  # ...but no longer than this, whatever duration a playlist claims
GRACE_S = 1.0
STALL_S = 10.0  # no new segment for this long: the target stalled
STREAMING = ("video", "audio")


@dataclass(frozen=True)
class HLSEvent:
    """What the browser needs to start one event whose output is a streaming video or audio."""

    root: str  # e.g. http://127.0.0.1:7860/gradio_api
    fn_index: int
    trigger_id: int
    defaults: list[Any]
    input_labels: list[str]
    output: str  # "video" or "audio"


@dataclass
class _Measured:
    """One segment as this client saw it."""

    index: int
    uri: str
    listed_s: float
    duration_s: float
    target_duration_s: float
    fetch_start_s: float | None = None
    decoded_s: float | None = None
    frames: list[tuple[int, float]] = field(default_factory=list)  # (sample id, offset s)
    orientations: list[str | None] = field(default_factory=list)


@dataclass
class _Session:
    user: int
    event: HLSEvent
    http: httpx.AsyncClient
    config: ClientConfig
    result: ClientResult
    record: SessionRecord
    stop_at: float
    session_hash: str = field(default_factory=lambda: secrets.token_hex(6))
    event_id: str | None = None
    t_join: float = 0.0
    playlist_url: str | None = None
    player_start_s: float | None = None  # our first playlist read, made the moment the URL came: hls.js's first load
    segments: list[_Measured] = field(default_factory=list)
    listed: asyncio.Event = field(default_factory=asyncio.Event)  # a process_generating message: read the playlist
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    fetches: asyncio.Queue[_Measured] = field(default_factory=asyncio.Queue)
    last_listing_s: float = 0.0
    playlist_rtts: list[float] = field(default_factory=list)
    stopping: bool = False
    polled_until: float | None = None  # the client stopped reading the playlist
    camera: VirtualCamera | None = None  # shape "camera": the webcam this session streams in
    camera_event: StreamEvent | None = None
    camera_event_id: str | None = None
    camera_started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def mirror(self) -> bool:
        """The webcam component mirrors what it captures (Gradio's default), as the browser sends it."""
        return self.camera_event is not None and bool(self.config.params.get("mirror", self.camera_event.mirror_webcam))

    def unmirrored(self, orientation: str | None) -> str | None:
        return unmirror(orientation) if orientation is not None and self.mirror else orientation

    def fail(self, error: str) -> None:
        """The first reason is kept; later ones are its consequences."""
        if self.record.status == "ok":
            self.record.status, self.record.error = "failed", error
            self.result.errors.append(f"user {self.user}: {error}")

    def client_error(self, where: str, exc: BaseException) -> None:
        self.fail(f"{CLIENT_ERROR}: {self.result.add_client_error(f'user {self.user} {where}', exc)}")


class HLSClient:
    async def run(self, camera: VirtualCamera, config: ClientConfig) -> ClientResult:
        result = ClientResult()
        shape = config.params.get("shape") or "video"
        async with httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=20 * config.users)) as http:
            event = await discover_hls_event(http, config.url, **event_choice(config.params))
            webcam = await discover_stream_event(http, config.url) if shape == "camera" else None
            result.app_settings["hls_output"] = event.output
            stop_at = camera.started + config.duration_s
            sessions = [
                _Session(user, event, http, config, result, SessionRecord(user), stop_at)
                for user in range(config.users)
            ]
            for session in sessions:
                session.camera, session.camera_event = (camera, webcam) if webcam else (None, None)
            result.sessions = [s.record for s in sessions]
            await asyncio.gather(*(self._drive(s) for s in sessions))
            # the camera's capture times, or the target's stamps of what it made itself
            stamps = (
                {"samples": camera.capture_times(time.perf_counter())}
                if webcam
                else await _stamps(http, config.url, result)
            )
        origins = {int(k): float(v) for k, v in stamps.get("samples", {}).items()}
        for session in sessions:
            try:
                self._replay(session, shape, origins, stamps.get("yields", {}).get(session.session_hash, []))
            except Exception as exc:
                session.client_error("player model", exc)
        result.app_settings["segment_s"] = _median([s.duration_s for x in sessions for s in x.segments])
        return result

    async def _drive(self, session: _Session) -> None:
        session.t_join = time.perf_counter()
        listener = poller = fetcher = sender = None
        try:
            if session.camera_event is not None and not await self._join_camera(session):
                return
            if not await self._join(session):
                return
            # like Gradio's JS client: the event stream opens once a join is registered
            listener = asyncio.create_task(self._listen(session))
            poller = asyncio.create_task(self._poll(session))
            fetcher = asyncio.create_task(self._fetch(session))
            if session.camera_event is not None:
                sender = asyncio.create_task(self._send_camera(session))
            await self._watch(session)
        except (httpx.HTTPError, OSError, websockets.WebSocketException) as exc:
            session.fail(f"{type(exc).__name__}: {exc}")
        finally:
            session.stopping = True
            await _cancel(session, sender)
            await _cancel(session, poller)
            session.polled_until = time.perf_counter()
            await self._stop(session)
            if fetcher is not None:
                with contextlib.suppress(asyncio.TimeoutError):  # what was listed in time still gets fetched
                    await asyncio.wait_for(session.fetches.join(), GRACE_S + 2 * _median_duration(session))
            await _cancel(session, fetcher)
            if listener is not None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(session.ended.wait()), GRACE_S)
            await _cancel(session, listener)
            if session.player_start_s is not None:
                session.record.received_s = session.polled_until - session.player_start_s

    async def _join(self, session: _Session) -> bool:
        event = session.event
        values = list(event.defaults)
        for label, value in (
            ("transform", session.config.transform),
            ("delay_ms", session.config.params.get("delay_ms")),
        ):
            if label in event.input_labels and value is not None:
                values[event.input_labels.index(label)] = value
        response = await session.http.post(
            f"{event.root}/queue/join",
            json={
                "data": values,
                "event_data": None,
                "fn_index": event.fn_index,
                "trigger_id": event.trigger_id,
                "session_hash": session.session_hash,
            },
        )
        if response.status_code != 200:
            session.record.status = "rejected"
            session.record.error = f"queue/join answered {response.status_code}: {response.text[:200]}"
            return False
        session.event_id = response.json().get("event_id")
        return True

    async def _join_camera(self, session: _Session) -> bool:
        """Press the webcam's record: its `.stream()` event joins the queue with the first frame."""
        assert session.camera_event is not None
        frame_id, payload = _webcam_payload(session)
        response = await session.http.post(
            f"{session.camera_event.root}/queue/join", json={**payload, "session_hash": session.session_hash}
        )
        if response.status_code != 200:
            session.record.status = "rejected"
            session.record.error = f"the webcam's queue/join answered {response.status_code}: {response.text[:200]}"
            return False
        session.camera_event_id = response.json().get("event_id")
        session.result.sends.append(Send(session.user, frame_id, time.perf_counter()))
        return True

    async def _send_camera(self, session: _Session) -> None:
        """What the webcam's timer does once its stream has started: the newest frame every stream_every s."""
        assert session.camera_event is not None and session.camera is not None
        await session.camera_started.wait()
        url = session.camera_event.root.replace("http", "ws", 1) + f"/stream/{session.camera_event_id}"
        try:
            async with await connect_like_a_browser(url) as websocket:
                tick = time.perf_counter()
                while tick < session.stop_at:
                    frame_id, payload = _webcam_payload(session)
                    await websocket.send(json.dumps({**payload, "session_hash": session.session_hash}))
                    session.result.sends.append(Send(session.user, frame_id, time.perf_counter()))
                    tick += session.camera_event.stream_every
                    await asyncio.sleep(max(0.0, tick - time.perf_counter()))
        except (OSError, websockets.WebSocketException) as exc:
            if not session.stopping:
                session.fail(f"the webcam stream broke: {type(exc).__name__}: {exc}")

    async def _watch(self, session: _Session) -> None:
        """Until the window and its drain are over: fail the session when the target stalls or ends early."""
        drain_until = session.stop_at + DRAIN_S
        while (now := time.perf_counter()) < drain_until + min(_median_duration(session), MAX_DRAIN_SEGMENT_S):
            if session.ended.is_set():
                if session.record.status == "ok" and now < session.stop_at:
                    session.fail("the event ended before the case's window did")
                return
            if session.record.status != "ok":
                return
            if session.segments and now - session.last_listing_s > STALL_S and now < session.stop_at:
                session.fail(f"no new segment for {now - session.last_listing_s:.1f} s ({stalled(session.config)})")
                return
            await asyncio.sleep(0.05)
        if not session.segments and session.record.status == "ok":
            waited = time.perf_counter() - session.t_join
            started = "queue_wait_ms" in session.record.phases_ms
            session.fail(
                f"no segment was listed in the {waited:.1f} s after joining the queue"
                if started
                else f"never started: waited {waited:.1f} s in the queue"
            )

    async def _stop(self, session: _Session) -> None:
        """Press Stop: POST /cancel, as Gradio's JS client does; the live generator would run on otherwise. A webcam
        stream is closed the way the webcam's Stop closes it."""
        if session.camera_event_id is not None and session.camera_event is not None:
            with contextlib.suppress(httpx.HTTPError):
                await session.http.post(
                    f"{session.camera_event.root}/stream/{session.camera_event_id}/close", timeout=GRACE_S
                )
        if session.event_id is None:
            return
        with contextlib.suppress(httpx.HTTPError):
            await session.http.post(
                f"{session.event.root}/cancel",
                json={
                    "session_hash": session.session_hash,
                    "fn_index": session.event.fn_index,
                    "event_id": session.event_id,
                },
                timeout=GRACE_S,
            )

    async def _listen(self, session: _Session) -> None:
        """Follow the SSE stream: queue wait, the playlist URL, one message per yield, the end."""
        try:
            await self._read_events(session)
        except httpx.HTTPError as exc:
            if not session.stopping:  # the server may drop the stream once the event is cancelled
                session.fail(f"event stream broke: {type(exc).__name__}: {exc}")
        finally:
            session.ended.set()

    async def _read_events(self, session: _Session) -> None:
        record = session.record
        async with session.http.stream(
            "GET", f"{session.event.root}/queue/data", params={"session_hash": session.session_hash}, timeout=None
        ) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                kind = message.get("msg")
                now = time.perf_counter()
                if session.camera_event_id is not None and message.get("event_id") == session.camera_event_id:
                    self._webcam_message(session, message)
                    continue
                if kind == "process_starts":
                    record.phases_ms["queue_wait_ms"] = (now - session.t_join) * 1000
                elif kind == "process_generating":
                    if session.playlist_url is None:
                        session.playlist_url = _playlist_url(message.get("output", {}).get("data", []), session)
                        if session.playlist_url is not None:
                            record.phases_ms["playlist_ms"] = (now - session.t_join) * 1000
                    session.listed.set()
                elif kind == "process_completed":
                    if not message.get("success", True):
                        error = (message.get("output") or {}).get("error") or "the event failed"
                        session.fail(f"the app raised: {error}")
                    break

    def _webcam_message(self, session: _Session, message: dict[str, Any]) -> None:
        kind = message.get("msg")
        if kind == "process_starts":
            session.record.phases_ms["webcam_queue_wait_ms"] = (time.perf_counter() - session.t_join) * 1000
            session.camera_started.set()
        elif kind in ("close_stream", "process_completed") and not message.get("success", True):
            error = (message.get("output") or {}).get("error") or "the webcam stream failed"
            session.fail(f"the app's webcam handler raised: {error}")

    async def _poll(self, session: _Session) -> None:
        """Read the playlist every POLL_S and after every SSE message; queue each new segment for fetching."""
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(session.listed.wait(), POLL_S)
            session.listed.clear()
            if session.playlist_url is None:
                continue
            sent = time.perf_counter()
            try:
                response = await session.http.get(session.playlist_url)
            except httpx.HTTPError as exc:
                session.fail(f"reading the playlist failed: {type(exc).__name__}: {exc}")
                return
            now = time.perf_counter()
            if response.status_code != 200:
                continue  # the stream is gone once the event ends; the watchdog decides what that means
            session.playlist_rtts.append(now - sent)
            if session.player_start_s is None:
                session.player_start_s = now
            playlist = m3u8.loads(response.text)
            for segment in playlist.segments[len(session.segments) :]:
                measured = _Measured(
                    index=len(session.segments),
                    uri=urljoin(session.playlist_url, segment.uri),
                    listed_s=(sent + now) / 2,  # the server answered about half a round trip after we asked
                    duration_s=float(segment.duration or 0.0),
                    target_duration_s=float(playlist.target_duration or 0.0),
                )
                session.segments.append(measured)
                session.last_listing_s = now
                if len(session.segments) == 1:
                    session.record.phases_ms["first_segment_ms"] = (now - session.t_join) * 1000
                session.fetches.put_nowait(measured)

    async def _fetch(self, session: _Session) -> None:
        """Download and decode segments one at a time, in playlist order, as a player does."""
        output = session.event.output
        while True:
            measured = await session.fetches.get()
            try:
                measured.fetch_start_s = time.perf_counter()
                response = await session.http.get(measured.uri)
                if response.status_code != 200:
                    session.result.errors.append(
                        f"user {session.user}: segment {measured.index} answered {response.status_code}"
                    )
                    measured.decoded_s = time.perf_counter()  # nothing to show: a player moves past it
                    continue
                decoded = await asyncio.to_thread(_decode, response.content, output)
                measured.decoded_s = time.perf_counter()
                measured.frames, measured.orientations = decoded.frames, decoded.orientations
                session.record.received_bytes += len(response.content)
                for width, height in decoded.sizes:
                    session.record.received_frame(width, height)
                session.result.undecoded += decoded.undecoded
            except httpx.HTTPError as exc:
                session.result.errors.append(f"user {session.user}: fetching segment {measured.index} failed: {exc}")
                measured.decoded_s = time.perf_counter()
            except Exception as exc:
                session.client_error(f"segment {measured.index} decode", exc)
            finally:
                session.fetches.task_done()

    def _replay(self, session: _Session, shape: str, origins: dict[int, float], yields: list[int]) -> None:
        """Each policy's player over this session's timeline: receipts (hls.js default), per-policy metrics."""
        result, user = session.result, session.user
        segments, orientation, unknown = [], {}, 0
        for measured in session.segments:
            if measured.decoded_s is None or measured.fetch_start_s is None:
                continue
            frames = measured.frames
            orientation.update(zip((i for i, _ in frames), map(session.unmirrored, measured.orientations), strict=True))
            # a marker the target never made would be a misread: the checksum should make this 0
            unknown += sum(1 for sample_id, _ in frames if origins and sample_id not in origins)
            if shape == "keep_repeating":  # every segment is the same file: the sample is the yield that listed it
                frames = [(yields[measured.index], 0.0)] if frames and measured.index < len(yields) else []
            if session.camera is None:  # a generated sample is "sent" when its segment is listed
                result.sends += [Send(user, sample_id, measured.listed_s) for sample_id, _ in frames]
            segments.append(
                Segment(
                    index=measured.index,
                    listed_s=measured.listed_s,
                    fetch_s=measured.decoded_s - measured.fetch_start_s,
                    duration_s=measured.duration_s,
                    target_duration_s=measured.target_duration_s,
                    frames=tuple(frames),
                )
            )
        result.origin_times.update(
            {i: origins[i] for i in yields if i in origins} if shape == "keep_repeating" else origins
        )
        result.metrics["unknown_sample_ids"] = result.metrics.get("unknown_sample_ids", 0) + unknown
        if session.player_start_s is None or not segments:
            return
        listed = {m.index: m.listed_s for m in session.segments}
        for policy in POLICIES:
            playback = play(
                segments, session.player_start_s, policy, session.polled_until, _median(session.playlist_rtts) or 0.0
            )
            _add_metrics(result, playback, origins, session.t_join)
            if policy is not HLSJS_DEFAULT:
                continue
            if playback.first_frame_s is not None:
                session.record.phases_ms["first_frame_ms"] = (playback.first_frame_s - session.t_join) * 1000
            for shown in playback.presented:
                if shown.sample_id not in origins:
                    continue
                made, at = origins[shown.sample_id], listed[shown.segment]
                stages = {
                    "producer_ms": (at - made) * 1000,
                    "fetch_ms": (shown.ready_s - at) * 1000,
                    "holdback_ms": (shown.shown_s - shown.ready_s) * 1000,
                }
                seen = orientation.get(shown.sample_id)
                result.receipts.append(Receipt(user, shown.sample_id, shown.shown_s, stages, seen))
                if seen is not None:
                    result.orientations[seen] = result.orientations.get(seen, 0) + 1


def _add_metrics(result: ClientResult, playback: Playback, origins: dict[int, float], t_join: float) -> None:
    """Per-policy lists (pooled over repeats and users) and counts (summed)."""
    name = playback.policy
    metrics = result.metrics
    metrics.setdefault(f"glass_to_glass_ms[{name}]", []).extend(
        (p.shown_s - origins[p.sample_id]) * 1000 for p in playback.presented if p.sample_id in origins
    )
    metrics[f"rebuffers[{name}]"] = metrics.get(f"rebuffers[{name}]", 0) + playback.rebuffers
    metrics[f"stalled_s[{name}]"] = metrics.get(f"stalled_s[{name}]", 0.0) + playback.stalled_s
    first = metrics.setdefault(f"first_frame_ms[{name}]", [])
    if playback.first_frame_s is not None:
        first.append((playback.first_frame_s - t_join) * 1000)
    if playback.holdback_s is not None:
        metrics.setdefault(f"start_behind_edge_s[{name}]", []).append(playback.holdback_s)


@dataclass
class _Decoded:
    frames: list[tuple[int, float]] = field(default_factory=list)
    orientations: list[str | None] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    undecoded: int = 0


def _decode(data: bytes, output: str) -> _Decoded:
    """Every frame's marker and offset from the segment's first frame (video); every marker burst (audio)."""
    decoded = _Decoded()
    with av.open(io.BytesIO(data)) as container:
        if output == "video":
            first: float | None = None
            for frame in container.decode(video=0):
                at = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
                first = at if first is None else first
                decoded.sizes.append((frame.width, frame.height))
                reading = decode_marker(frame.to_ndarray(format="rgb24"))
                if reading is None:
                    decoded.undecoded += 1
                    continue
                decoded.frames.append((reading.frame_id, at - first))
                decoded.orientations.append(reading.orientation)
            return decoded
        chunks, rate = [], None
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            chunks.append(_mono(frame))
    if chunks and rate:
        for reading in AudioMarkerDecoder(rate).feed(np.concatenate(chunks).astype(np.float32)):
            decoded.frames.append((reading.marker_id, reading.start_sample / rate))
            decoded.orientations.append(None)
    return decoded


def _webcam_payload(session: _Session) -> tuple[int, dict[str, Any]]:
    assert session.camera is not None and session.camera_event is not None
    return webcam_payload(session.camera, session.camera_event, session.mirror)


def _mono(frame: av.AudioFrame) -> np.ndarray:
    """One decoded audio frame as mono float in [-1, 1] (planar or packed, float or int16)."""
    pcm = frame.to_ndarray()
    channels = len(frame.layout.channels)
    pcm = pcm.mean(axis=0) if frame.format.is_planar else pcm.reshape(-1, channels).mean(axis=1)
    return pcm / 32768 if frame.format.name.startswith("s16") else pcm


async def discover_hls_event(
    http: httpx.AsyncClient, url: str, api_name: str | None = None, inputs: Mapping[str, Any] | None = None
) -> HLSEvent:
    """The dependency named `api_name`, else the first whose output is a streaming video or audio."""
    config = await get_config(http, url)
    components = {c["id"]: c for c in config.get("components", [])}
    for index, dependency in enumerate(config.get("dependencies", [])):
        if api_name and dependency.get("api_name") != api_name:
            continue
        outputs = [components[i] for i in dependency.get("outputs", [])]
        streaming = [c for c in outputs if c.get("type") in STREAMING and c.get("props", {}).get("streaming")]
        if not streaming or not dependency.get("targets"):
            continue
        components_in = [components[i] for i in dependency.get("inputs", [])]
        return HLSEvent(
            root=url + config.get("api_prefix", "/gradio_api"),
            fn_index=dependency.get("id", index),
            trigger_id=dependency["targets"][0][0],
            defaults=page_values(components_in, inputs),
            input_labels=input_labels(components_in),
            output=streaming[0]["type"],
        )
    named = f" named {api_name!r}" if api_name else ""
    raise ProtocolError(f"{url}: no event{named} with a streaming gr.Video or gr.Audio output found in /config")


async def _stamps(http: httpx.AsyncClient, url: str, result: ClientResult) -> dict[str, Any]:
    """The target's capture times; without them (a dead target, an app with no GET /stamps) no frame can be timed."""
    try:
        response = await http.get(f"{url}/stamps")
    except httpx.HTTPError as exc:
        result.errors.append(f"GET /stamps failed after the run ({type(exc).__name__}: {exc}): no frame can be timed")
        return {}
    if response.status_code != 200:
        result.errors.append(f"GET /stamps answered {response.status_code}: the frames' capture times are unknown")
        return {}
    return dict(response.json())


def _playlist_url(data: list[Any], session: _Session) -> str | None:
    for value in data:
        if isinstance(value, dict):
            file = value.get("video", value)
            if isinstance(file, dict) and file.get("is_stream") and file.get("url"):
                url = str(file["url"])
                return url if url.startswith("http") else session.config.url + url
    return None


async def _cancel(session: _Session, task: asyncio.Task[None] | None) -> None:
    """Cancel a receiver; an exception it had raised is a bug of ours, recorded as such."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        outcome = await asyncio.gather(task, return_exceptions=True)
        if isinstance(outcome[0], Exception) and not isinstance(outcome[0], asyncio.CancelledError):
            session.client_error("receiver", outcome[0])


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def _median_duration(session: _Session) -> float:
    return _median([s.duration_s for s in session.segments]) or 0.0
