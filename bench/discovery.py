"""What a running app streams, found the way a browser finds out: Gradio's /config and FastRTC's routes.

`bench inspect` prints it; `bench run --app/--url` picks one endpoint and builds a
one-target scenario for it. Every way in maps to a target kind the harness already
measures, so a user's app is driven by the same clients as ours:

- a Gradio `.stream()` on a webcam image -> gradio-stream; on a microphone -> gradio-mic
- a Gradio generator event with an image or textbox output -> gradio-generator
- a Gradio event with a streaming gr.Video / gr.Audio output -> gradio-hls
- fastrtc's WebRTC component in a Gradio page (`stream.ui.launch()`) -> fastrtc-webrtc / fastrtc-voice
- a FastRTC Stream mounted on FastAPI (`/webrtc/offer` in /openapi.json) -> the same kinds

A mounted FastRTC app does not publish its modality. FastRTC's `/websocket/offer`
copies the handler before it accepts (`handler.copy()`, fastrtc 0.0.34 stream.py):
a StreamHandler (every audio handler, ReplyOnPause included) has `copy`, a plain
video callable does not, so the handshake alone tells audio from video without
opening a session (no concurrency slot is taken; a video app logs the refusal).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from bench.catalog import TARGET_KINDS
from bench.clients.fastrtc_gradio import webrtc_components
from bench.clients.gradio_config import get_config, input_labels
from bench.errors import BenchError, ProtocolError, TargetError

PROBE_TIMEOUT_S = 10.0


class DiscoveryError(BenchError):
    """The app answers but offers nothing the harness can stream with (exit code 2)."""


@dataclass(frozen=True)
class Endpoint:
    """One way to stream with the app, and the target kind and client that drive it like a browser."""

    name: str  # what --api-name selects: a Gradio api_name, or the FastRTC route
    what: str  # in a user's words: "webcam .stream()", "generator (image outputs)"
    kind: str
    client: str
    inputs: tuple[str, ...] = ()  # "label (type)" of each input, in order
    outputs: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)  # target settings the case needs (api_name, shape)
    note: str = ""
    labels: tuple[str, ...] = ()  # the inputs' labels: what --input KEY=VALUE names

    @property
    def transport(self) -> str:
        return {
            "gradio-stream": "Gradio queue (webcam frames over HTTP, outputs over SSE)",
            "gradio-mic": "Gradio queue (WAV chunks over HTTP, outputs over SSE)",
            "gradio-sse": "Gradio queue (one request, outputs over SSE)",
            "hls": "Gradio queue, then HLS playlist and segments",
            "webrtc": "WebRTC (aiortc)",
            "webrtc-audio": "WebRTC (aiortc)",
            "voice": "WebRTC (aiortc), data channel events",
            "fastrtc-websocket": "FastRTC WebSocket (mu-law)",
        }.get(self.client, self.client)


@dataclass(frozen=True)
class AppInfo:
    url: str
    framework: str  # "Gradio 5.50.0", "FastRTC on FastAPI"
    endpoints: tuple[Endpoint, ...]
    others: tuple[str, ...] = ()  # what the app has that does not stream, for the nothing-fits line

    def choose(self, api_name: str | None = None, kind: str | None = None) -> Endpoint:
        """The endpoint named `api_name` (and of `kind`, if given), else the first one; DiscoveryError if none fits."""
        if not self.endpoints:
            has = "; ".join(self.others) or "no event at all"
            raise DiscoveryError(f"{self.url} ({self.framework}) has no streaming event streambench can drive: {has}")
        matches = [
            e
            for e in self.endpoints
            if (api_name is None or e.name.lstrip("/") == api_name.lstrip("/")) and (kind is None or e.kind == kind)
        ]
        if not matches:
            wanted = " and ".join(
                part
                for part in (f"--api-name {api_name}" if api_name else "", f"--kind {kind}" if kind else "")
                if part
            )
            has = ", ".join(f"{e.name} ({e.kind})" for e in self.endpoints)
            raise DiscoveryError(f"{self.url}: nothing matches {wanted} (the app has: {has})")
        return matches[0]


def discover(url: str) -> AppInfo:
    """Read the app at `url`; a DiscoveryError (exit 2) when nothing answers or it is neither Gradio nor FastRTC."""
    url = url.rstrip("/")
    return asyncio.run(_discover(url))


async def _discover(url: str) -> AppInfo:
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as http:
        try:
            config = await get_config(http, url)
        except TargetError:
            raise DiscoveryError(
                f"nothing answers at {url}: start the app, or give --app to let streambench start it"
            ) from None
        except ProtocolError:
            config = None
        if config is not None and config.get("components") is not None:
            return gradio_endpoints(url, config)
        return await _fastapi_endpoints(http, url)


def gradio_endpoints(url: str, config: dict[str, Any]) -> AppInfo:
    """Every streaming way in that a Gradio page offers, in the order of its events."""
    components = {c["id"]: c for c in config.get("components", [])}
    endpoints: list[Endpoint] = []
    others: list[str] = []
    for index, dependency in enumerate(config.get("dependencies", [])):
        inputs = [components.get(i, {}) for i in dependency.get("inputs", [])]
        outputs = [components.get(i, {}) for i in dependency.get("outputs", [])]
        name = f"/{dependency['api_name']}" if dependency.get("api_name") else f"fn {dependency.get('id', index)}"
        endpoint = _gradio_endpoint(name, dependency, inputs, outputs)
        if endpoint is not None:
            endpoints.append(endpoint)
        elif _listable(dependency, inputs + outputs):
            triggers = ", ".join(sorted({t[1] for t in dependency.get("targets", [])})) or "api"
            others.append(f"{name} ({triggers}: {_describe(inputs)} -> {_describe(outputs)})")
    endpoints += _webrtc_component_endpoints(config)
    return AppInfo(url, f"Gradio {config.get('version', '?')}", tuple(endpoints), tuple(others))


def _gradio_endpoint(
    name: str, dependency: dict[str, Any], inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
) -> Endpoint | None:
    """The kind that drives this event, mirroring each client's own event discovery."""
    described = {
        "inputs": tuple(_label(c) for c in inputs),
        "outputs": tuple(_label(c) for c in outputs),
        "labels": tuple(input_labels(inputs)),
    }
    settings: dict[str, Any] = {"api_name": dependency["api_name"]} if dependency.get("api_name") else {}
    streamed = any(t[1] == "stream" for t in dependency.get("targets", []))
    types = [c.get("type") for c in inputs]
    if streamed and "image" in types:
        every = dependency.get("stream_every") or 0.5
        return Endpoint(
            name,
            f"webcam .stream() every {every:g} s",
            "gradio-stream",
            "gradio-stream",
            **described,
            settings=settings,
        )
    if streamed and any(c.get("type") == "audio" and c.get("props", {}).get("streaming") for c in inputs):
        every = dependency.get("stream_every") or 0.5
        return Endpoint(
            name, f"microphone .stream() every {every:g} s", "gradio-mic", "gradio-mic", **described, settings=settings
        )
    streaming = [
        c["type"] for c in outputs if c.get("type") in ("video", "audio") and c.get("props", {}).get("streaming")
    ]
    if streaming and dependency.get("targets"):
        return Endpoint(
            name,
            f"streaming gr.{streaming[0].capitalize()} output (HLS)",
            "gradio-hls",
            "hls",
            **described,
            settings=settings,
            note="frames are timed from the app's GET /stamps; an app without it gets arrivals and stalls only",
        )
    kinds = dependency.get("types") or {}
    if dependency.get("backend_fn") and kinds.get("generator") and not kinds.get("cancel"):
        output_types = [c.get("type") for c in outputs]
        if "image" in output_types or "textbox" in output_types:
            shape = "images" if "image" in output_types else "tokens"
            what = "generator (image outputs)" if shape == "images" else "generator (text outputs)"
            return Endpoint(
                name,
                what,
                "gradio-generator",
                "gradio-sse",
                **described,
                settings={**settings, "shape": shape},
                note="items timed from the click; from each yield too where the app returns its yield times",
            )
    return None


def _listable(dependency: dict[str, Any], components: list[dict[str, Any]]) -> bool:
    """A named event of the app's own (fastrtc's WebRTC component wires events of its own: not the user's)."""
    own = dependency.get("backend_fn") and dependency.get("show_api", True) and dependency.get("api_name")
    return bool(own) and not any(c.get("type") == "webrtc" for c in components)


def _webrtc_component_endpoints(config: dict[str, Any]) -> list[Endpoint]:
    """fastrtc's WebRTC component in a Gradio page (`stream.ui.launch()`): negotiated through Gradio's own route."""
    endpoints = []
    for component in webrtc_components(config):
        if component.mode != "send-receive":
            continue
        kind = "fastrtc-webrtc" if component.modality == "video" else "fastrtc-voice"
        endpoints.append(
            Endpoint(
                f"webrtc-{component.component_id}",
                f"FastRTC {component.modality} component (send-receive, stream.ui)",
                kind,
                TARGET_KINDS[kind].client,
                inputs=("webrtc", *component.extra_labels),
                outputs=("webrtc",),
                note="" if kind == "fastrtc-webrtc" else _AUDIO_NOTE,
                labels=component.extra_labels,
            )
        )
    return endpoints


_AUDIO_NOTE = "driven as a voice app (speech, turns); a continuous audio handler: --kind fastrtc-audio"


async def _fastapi_endpoints(http: httpx.AsyncClient, url: str) -> AppInfo:
    """A FastRTC Stream mounted on FastAPI: its routes are in /openapi.json (FastAPI publishes it by default)."""
    try:
        response = await http.get(f"{url}/openapi.json")
        paths = dict(response.json().get("paths", {})) if response.is_success else {}
    except (httpx.HTTPError, ValueError):
        paths = {}
    offers = sorted(p for p in paths if p.endswith("/webrtc/offer"))
    if not offers:
        has = ", ".join(sorted(paths)) if paths else "no /config (not Gradio) and no /openapi.json (not FastAPI)"
        return AppInfo(url, "not Gradio, no FastRTC routes", (), (f"routes: {has}",))
    prefix = offers[0].removesuffix("/webrtc/offer")
    modality = await probe_mounted_modality(url + prefix)
    if modality == "video":
        endpoint = Endpoint(f"{prefix}/webrtc/offer", "FastRTC video handler (mounted)", "fastrtc-webrtc", "webrtc")
    else:
        endpoint = Endpoint(
            f"{prefix}/webrtc/offer", "FastRTC audio handler (mounted)", "fastrtc-voice", "voice", note=_AUDIO_NOTE
        )
    endpoints = [endpoint]
    if modality == "audio":
        endpoints.append(
            Endpoint(
                f"{prefix}/websocket/offer",
                "FastRTC audio handler over its WebSocket",
                "fastrtc-audio",
                "fastrtc-websocket",
            )
        )
    others = tuple(f"route {p}" for p in sorted(paths) if p not in offers)
    return AppInfo(url, "FastRTC on FastAPI", tuple(endpoints), others)


async def probe_mounted_modality(base: str) -> str:
    """ "audio" when FastRTC's WebSocket route accepts a handshake (its handler is a StreamHandler), else "video"."""
    ws_url = base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/websocket/offer"
    try:
        async with websockets.connect(ws_url, open_timeout=PROBE_TIMEOUT_S, close_timeout=1):
            return "audio"
    except (OSError, TimeoutError, websockets.WebSocketException):
        return "video"


def _label(component: dict[str, Any]) -> str:
    kind = component.get("type", "?")
    label = component.get("props", {}).get("label")
    return f"{label} ({kind})" if label and label != kind else str(kind)


def _describe(components: list[dict[str, Any]]) -> str:
    return ", ".join(_label(c) for c in components) or "nothing"
