"""Browser-faithful client for Gradio `.stream()` microphone events (`gr.Audio(streaming=True)` recording).

What Gradio 5.50's frontend sends, read in gradio-app/gradio tag v5.50.1 (@gradio/audio 0.19.3; the installed
5.50.0 ships the same code, see gradio/templates/node/build/server/chunks/InteractiveAudio-*.js):
- js/audio/interactive/InteractiveAudio.svelte + js/audio/streaming/media_recorder.ts: recording starts an
  extendable-media-recorder with the WAV encoder, `recorder.start(stream_every * 1000)`. Each chunk is the audio
  SINCE THE LAST CHUNK, not the whole recording. The 44-byte header of the first chunk is kept and put in front of
  every later send, so each send is a complete WAV file: that header + the PCM since the last send.
- The encoder (extendable-media-recorder-wav-encoder-worker, inlined in the installed
  gradio/templates/frontend/assets/module-moYYmAFH.js) emits exactly ceil(timeslice_ms * rate / 1000) samples a
  chunk as 16-bit little-endian PCM; its header claims an endless stream (data size 4294967251, RIFF size +36).
  Rate and channels are the microphone track's `getSettings()` (module-Bv4JZ_cX.js): typically 48 kHz mono for
  Chrome's default microphone, which is what we send. A chunk leaves when its last sample is in (the AudioWorklet
  path, 128 frames at a time); Chrome's native-MediaRecorder path gets PCM in 100 ms pieces, so there a chunk can
  leave up to ~100 ms later than here.
- Each send is `new File(parts, "audio.wav")` (no type: multipart `application/octet-stream`) POSTed to
  `/gradio_api/upload` (client/js/src/upload.ts); the event carries the FileData of the uploaded file:
  {path, url: <root>/gradio_api/file=<path>, orig_name: "audio.wav", size, is_stream: true, mime_type: "",
  meta: {_type: "gradio.FileData"}}.
- js/core/src/Blocks.svelte, js/core/src/stores.ts, client/js/src/helpers/api_info.ts: the first chunk joins the
  queue; from the join until the first `process_streaming` output the microphone input is `pending` and its
  chunks are HELD, then sent in one file together with the next chunk (audio is delayed, never dropped, unlike
  webcam frames); later chunks go over the websocket `/stream/{event_id}` (POST fallback). Stopping posts
  `/stream/{event_id}/close`; the partial chunk the recorder flushes then is not sent (nor is the empty
  `stop_recording` upload, which feeds no `.stream()` event).
A marker is sent with the chunk holding its first sample; it is received when the transcript first shows "m<ID>".
The queue session itself (join, stall watchdog, close, releasing the slot) is the webcam client's.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.clients.base import ClientConfig
from bench.clients.gradio_config import event_choice, get_config, page_values
from bench.clients.gradio_stream import GradioStreamClient, _Session
from bench.errors import ProtocolError
from bench.media.microphone import VirtualMicrophone
from bench.records import ClientResult, Receipt, Send, SessionRecord

ENDLESS_DATA_BYTES = 4294967251  # the encoder's data size while recording: min(Infinity, 2**32 - 45)
WORD = re.compile(r"\bm(\d+)\b")  # a marker in the transcript


def wav_header(sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """The 44 bytes the frontend's WAV encoder writes at the start of a recording (and Gradio re-sends each chunk)."""
    block = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", ENDLESS_DATA_BYTES + 36)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, bits)
        + b"data"
        + struct.pack("<I", ENDLESS_DATA_BYTES)
    )


def chunk_samples(stream_every: float, sample_rate: int) -> int:
    """Samples per recorder chunk, computed as the encoder does (timeslice in ms, then ceil)."""
    return math.ceil(stream_every * 1000 * (sample_rate / 1000))


@dataclass(frozen=True)
class MicEvent:
    """What the browser needs to drive one microphone `.stream()` dependency."""

    root: str  # e.g. http://127.0.0.1:7860/gradio_api
    fn_index: int
    trigger_id: int
    audio_input: int  # position of the microphone in the inputs
    defaults: list[Any]  # every input's current value, sent with each chunk (a gr.State has none: null)
    stream_every: float  # the recorder's timeslice, read from /config as the browser does


async def discover_mic_event(
    http: httpx.AsyncClient, url: str, api_name: str | None = None, inputs: Mapping[str, Any] | None = None
) -> MicEvent:
    """The dependency named `api_name`, else the first one triggered by `stream` on a streaming microphone."""
    config = await get_config(http, url)
    components = {c["id"]: c for c in config.get("components", [])}
    for index, dependency in enumerate(config.get("dependencies", [])):
        stream_targets = [t for t in dependency.get("targets", []) if t[1] == "stream"]
        if not stream_targets or (api_name and dependency.get("api_name") != api_name):
            continue
        components_in = [components[i] for i in dependency["inputs"]]
        microphones = [
            n for n, c in enumerate(components_in) if c.get("type") == "audio" and c.get("props", {}).get("streaming")
        ]
        if microphones:
            return MicEvent(
                root=url + config.get("api_prefix", "/gradio_api"),
                fn_index=dependency.get("id", index),
                trigger_id=stream_targets[0][0],
                audio_input=microphones[0],
                defaults=page_values(components_in, inputs),
                stream_every=float(dependency.get("stream_every") or 0.5),
            )
    named = f" named {api_name!r}" if api_name else ""
    raise ProtocolError(f"{url}: no microphone .stream() event{named} found in /config")


@dataclass
class _MicSession(_Session):
    """A webcam client session whose source is a microphone, with each sent marker's stages until it was sent
    and the markers shown so far."""

    stages: dict[int, dict[str, float]] = field(default_factory=dict)
    shown: set[int] = field(default_factory=set)  # markers the transcript has shown


class GradioMicClient(GradioStreamClient):
    async def run(self, camera: VirtualMicrophone, config: ClientConfig) -> ClientResult:
        """Record from `camera` (a VirtualMicrophone) as each user's browser tab does, for `config.duration_s`."""
        result = ClientResult()
        limits = httpx.Limits(max_connections=20 * config.users)
        async with httpx.AsyncClient(timeout=30.0, limits=limits) as http:
            event = await discover_mic_event(http, config.url, **event_choice(config.params))
            result.app_settings["stream_every"] = event.stream_every
            sessions = [
                _MicSession(user, event, http, camera, config, result, SessionRecord(user))
                for user in range(config.users)
            ]
            result.sessions = [s.record for s in sessions]
            await asyncio.gather(*(self._drive(s) for s in sessions))
        sent = {(s.user, s.sample_id) for s in result.sends}
        result.metrics["wrong_marker_ids"] = sum((r.user, r.sample_id) not in sent for r in result.receipts)
        return result

    async def _send_loop(self, session: _MicSession) -> None:
        """Hand over each recorder chunk when its last sample is in: join, hold while pending, then stream."""
        mic, result = session.camera, session.result
        stop_at = mic.started + session.config.duration_s
        size = chunk_samples(session.event.stream_every, mic.sample_rate)
        recorded = unsent = mic.latest_sample()  # the user presses record now
        websocket = None
        try:
            while session.record.status == "ok" and not session.ended.is_set():
                ready_s = mic.sample_time(recorded + size)
                if ready_s > stop_at:
                    break
                await mic.wait_until_sample(recorded + size)
                result.tick_lag_ms.append((time.perf_counter() - ready_s) * 1000)
                recorded += size
                if session.event_id is not None and not session.outputs:
                    continue  # pending: the frontend holds the chunk and sends it with the next one
                upload_s = time.perf_counter()
                payload = await self._audio_payload(session, unsent, recorded)
                uploaded_s = time.perf_counter()
                if session.event_id is None:
                    if not await self._join(session, payload):
                        return
                else:
                    if websocket is None:
                        websocket = await self._connect(session)
                    message = json.dumps({**payload, "session_hash": session.session_hash})
                    if websocket is not None:
                        await websocket.send(message)
                    else:
                        await session.http.post(f"{session.event.root}/stream/{session.event_id}", content=message)
                self._sent_audio(session, unsent, recorded, upload_s, uploaded_s)
                unsent = recorded
        finally:
            if websocket is not None:
                await websocket.close()

    async def _audio_payload(self, session: _MicSession, start: int, stop: int) -> dict[str, Any]:
        """Upload samples [start, stop) as the frontend's WAV file; the event payload carrying its FileData."""
        mic, event = session.camera, session.event
        wav = wav_header(mic.sample_rate) + mic.pcm(start, stop - start).astype("<i2").tobytes()
        response = await session.http.post(
            f"{event.root}/upload", files={"files": ("audio.wav", wav, "application/octet-stream")}
        )
        path = response.raise_for_status().json()[0]
        values = list(event.defaults)
        values[event.audio_input] = {
            "path": path,
            "url": f"{event.root}/file={path}",
            "orig_name": "audio.wav",
            "size": len(wav),
            "is_stream": True,
            "mime_type": "",
            "meta": {"_type": "gradio.FileData"},
        }
        return {"data": values, "event_data": None, "fn_index": event.fn_index, "trigger_id": event.trigger_id}

    def _sent_audio(self, session: _MicSession, start: int, stop: int, upload_s: float, uploaded_s: float) -> None:
        """Every marker whose first sample was in the file just sent left now; its stages so far tile its wait."""
        mic, now = session.camera, time.perf_counter()
        for marker_id in mic.marker_at(start, stop - start):
            session.sends.setdefault(marker_id, now)
            session.result.sends.append(Send(session.user, marker_id, now))
            session.stages[marker_id] = {
                "capture_wait_ms": (upload_s - mic.capture_time(marker_id)) * 1000,
                "upload_ms": (uploaded_s - upload_s) * 1000,
                "send_ms": (now - uploaded_s) * 1000,
            }

    def _outputs(self, session: _MicSession, data: list[Any], event_s: float) -> None:
        """An output message: a marker is received when the transcript first shows it."""
        texts = [v for v in data if isinstance(v, str)]
        for marker_id in (int(word) for text in texts for word in WORD.findall(text)):
            if marker_id not in session.shown:
                session.shown.add(marker_id)
                self._shown(session, marker_id, event_s)

    def _shown(self, session: _MicSession, marker_id: int, now: float) -> None:
        stages = dict(session.stages.get(marker_id, {}))
        if (sent := session.sends.get(marker_id)) is not None:
            stages["send_to_event_ms"] = (now - sent) * 1000
        session.result.receipts.append(Receipt(session.user, marker_id, now, stages))
        session.record.phases_ms.setdefault("first_output_ms", (now - session.t_join) * 1000)
