"""aiortc client for FastRTC-style WebRTC targets, doing what the browser does with a camera.

Per user: the browser's signalling (`_rtc_session`: "text" data channel, offer with
a `webrtc_id`, rejected and failed sessions recorded, never raised, network relays),
a camera track sending every frame at the source rate, the transform set through
POST /input_hook (the target's route to FastRTC's `set_input`) while ICE and DTLS
run, and every returned frame decoded for its marker (read from its luma plane; converted
to RGB only when a user's app's output is looked at or compared).

Without a network profile all users send one shared VP8 encoding of the camera
(`_shared_encoder`: each frame rendered and encoded once, not once per user) when VP8 is
what the answer negotiated; with another codec each user's sender encodes its own frames.
A case with a network profile keeps one encoder per user: aiortc's bitrate adaptation to
the REMB of the impaired link is part of what it measures.
"""

from __future__ import annotations

from aiortc import MediaStreamTrack
from av import VideoFrame

from bench.clients._browser_jitter import release_frames_like_a_browser
from bench.clients._rtc_session import GRACE_S, RTCSession, run_sessions
from bench.clients._rtc_tracks import CameraTrack, forward_keyframe_requests, marker_plane, negotiated_codec
from bench.clients._shared_encoder import SharedVp8Encoder
from bench.clients.base import ClientConfig
from bench.media.camera import VirtualCamera
from bench.media.marker import decode_marker
from bench.media.scene_change import signature, unchanged
from bench.records import ClientResult, OutputLook, Receipt

NO_INPUT_HOOK = "the app has no POST /input_hook route: the transform inputs could not be set"


class WebRTCClient:
    def __init__(self) -> None:
        self.candidate_pairs: dict[int, str | None] = {}  # user -> nominated ICE pair of the last run
        self.shared: SharedVp8Encoder | None = None  # the last run's shared encoder (None: one per user)

    async def run(self, camera: VirtualCamera, config: ClientConfig) -> ClientResult:
        result = ClientResult()
        release_frames_like_a_browser()
        session_type = _VideoSession
        shared = SharedVp8Encoder(camera) if config.network is None else None
        if shared is not None:
            session_type = type("_SharedVideoSession", (_VideoSession,), {"shared": shared})
        try:
            await run_sessions(session_type, camera, config, result, self.candidate_pairs)
        finally:
            self.shared = shared
            if shared is not None:
                shared.close()
        return result


class _VideoSession(RTCSession):
    kind = "video"
    noun = "video frame"
    source: VirtualCamera
    shared: SharedVp8Encoder | None = None
    track: CameraTrack

    def local_track(self) -> MediaStreamTrack:
        # frames of the grace period are not measured: they push the last measured one out of the target's receiver
        self.track = CameraTrack(self.source, self.user, self.stop_at + GRACE_S, self.result.sends)
        return self.track

    async def answered(self) -> None:
        """Share the VP8 encoding if VP8 was negotiated, and set the inputs while ICE and DTLS run, so the
        first returned frame is already transformed.

        Through a Gradio WebRTC component the page's tick sets them once connected: inputs labelled
        `transform` / `delay_ms` then take the case's values, any other keeps the value the app shows
        unless the case sets it by label (`inputs`).
        """
        self._share_encoder()
        if self.component is not None:
            chosen = self.config.params.get("inputs") or {}
            case_inputs = {"transform": self.config.transform, "delay_ms": self.config.params.get("delay_ms", 0)}
            self.inputs = {**case_inputs, **chosen}
            self.result.app_settings["transform_input"] = "transform" in self.component.extra_labels
            return
        inputs = {
            "webrtc_id": self.webrtc_id,
            "transform": self.config.transform,
            "delay_ms": self.config.params.get("delay_ms", 0),
        }
        response = await self.http.post(f"{self.url}/input_hook", json=inputs)
        self.result.app_settings["transform_input"] = response.status_code == 200
        if response.status_code == 404:
            if NO_INPUT_HOOK not in self.result.warnings:
                self.result.warnings.append(NO_INPUT_HOOK)
        elif response.status_code != 200:
            self.result.errors.append(
                f"user {self.user}: POST /input_hook answered HTTP {response.status_code}: {response.text[:200]}"
            )

    def _share_encoder(self) -> None:
        """Send the shared encoder's packets (aiortc's sender starts pulling only once DTLS is up, after this)."""
        codec = negotiated_codec(self.pc, self.track)
        if self.shared is None or codec is None or codec.lower() != "video/vp8":
            return
        self.track.shared = self.shared
        for sender in self.pc.getSenders():
            if sender.track is self.track:
                forward_keyframe_requests(sender, self.shared)

    def on_media(self, frame: VideoFrame) -> None:
        self.record.received_frame(frame.width, frame.height)
        image = None  # RGB, converted only when needed: ~0.1-0.3 ms a frame
        if self.source.scene_frames:  # a user's app: its outputs may lose the marker
            image = frame.to_ndarray(format="rgb24")
            self.result.looks.append(OutputLook(self.user, self.last_media_s, signature(image)))
        plane, gain = (image, 1.0) if image is not None else marker_plane(frame)
        reading = decode_marker(plane, gain=gain)
        if reading is None:
            self.result.undecoded += 1
            return
        self.phase("first_frame_ms")
        orientations = self.result.orientations
        orientations[reading.orientation] = orientations.get(reading.orientation, 0) + 1
        receipt = Receipt(self.user, reading.frame_id, self.last_media_s, orientation=reading.orientation)
        self.result.receipts.append(receipt)
        if self.result.compare_due(self.config.params):
            image = frame.to_ndarray(format="rgb24") if image is None else image
            self.result.compared(unchanged(image, self.source.frame(reading.frame_id)))
