"""aiortc client for FastRTC-style WebRTC targets, doing what the browser does with a camera.

Per user: the browser's signalling (`_rtc_session`: "text" data channel, offer with
a `webrtc_id`, rejected and failed sessions recorded, never raised, network relays),
a camera track sending every frame at the source rate, the transform set through
POST /input_hook (the target's route to FastRTC's `set_input`) while ICE and DTLS
run, and every returned frame decoded for its marker.
"""

from __future__ import annotations

from aiortc import MediaStreamTrack
from av import VideoFrame

from bench.clients._browser_jitter import release_frames_like_a_browser
from bench.clients._rtc_session import GRACE_S, RTCSession, run_sessions
from bench.clients._rtc_tracks import CameraTrack
from bench.clients.base import ClientConfig
from bench.media.camera import VirtualCamera
from bench.media.marker import decode_marker
from bench.media.scene_change import signature, unchanged
from bench.records import ClientResult, OutputLook, Receipt

NO_INPUT_HOOK = "the app has no POST /input_hook route: the transform inputs could not be set"


class WebRTCClient:
    def __init__(self) -> None:
        self.candidate_pairs: dict[int, str | None] = {}  # user -> nominated ICE pair of the last run

    async def run(self, camera: VirtualCamera, config: ClientConfig) -> ClientResult:
        result = ClientResult()
        release_frames_like_a_browser()
        await run_sessions(_VideoSession, camera, config, result, self.candidate_pairs)
        return result


class _VideoSession(RTCSession):
    kind = "video"
    noun = "video frame"
    source: VirtualCamera

    def local_track(self) -> MediaStreamTrack:
        # frames of the grace period are not measured: they push the last measured one out of the target's receiver
        return CameraTrack(self.source, self.user, self.stop_at + GRACE_S, self.result.sends)

    async def answered(self) -> None:
        """Set the inputs while ICE and DTLS run, so the first returned frame is already transformed.

        Through a Gradio WebRTC component the page's tick sets them once connected: inputs labelled
        `transform` / `delay_ms` then take the case's values, any other keeps the value the app shows
        unless the case sets it by label (`inputs`).
        """
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

    def on_media(self, frame: VideoFrame) -> None:
        self.record.received_frame(frame.width, frame.height)
        image = frame.to_ndarray(format="rgb24")
        if self.source.scene_frames:  # a user's app: its outputs may lose the marker
            self.result.looks.append(OutputLook(self.user, self.last_media_s, signature(image)))
        reading = decode_marker(image)
        if reading is None:
            self.result.undecoded += 1
            return
        self.phase("first_frame_ms")
        orientations = self.result.orientations
        orientations[reading.orientation] = orientations.get(reading.orientation, 0) + 1
        receipt = Receipt(self.user, reading.frame_id, self.last_media_s, orientation=reading.orientation)
        self.result.receipts.append(receipt)
        if self.result.compare_due(self.config.params):
            self.result.compared(unchanged(image, self.source.frame(reading.frame_id)))
