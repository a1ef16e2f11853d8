"""FastRTC's Gradio `WebRTC` component as its page drives it (`stream.ui.launch()`, or any Blocks app holding one).

Such an app has no `/webrtc/offer`: the component's frontend (fastrtc 0.0.34
`templates/component`) signals through Gradio's component server, and its extra
inputs reach `stream.set_input` only through the component's `tick` event. In
the page's order, per user (one Gradio `session_hash` per tab):

1. `turn()`: `POST {root}/component_server/` `{"data": [], "component_id",
   "fn_name": "turn", "session_hash"}` -> the RTC configuration for the browser.
2. `offer(body)`: the same route with `fn_name` "offer" and `data` `{"sdp",
   "type": "offer", "webrtc_id"}` -> the answer, or HTTP 200 `{"status":
   "failed", "meta": {"error"}}` for a refusal, as `/webrtc/offer` answers.
   A browser then trickles each ICE candidate it gathers through the same
   route (`{"candidate", "webrtc_id", "type": "ice-candidate"}`); aiortc puts
   every candidate in the offer, so there is nothing left to trickle.
3. The `tick` dependency (`set_input_gradio`), joined through the queue like
   any event: `data` is [the component's value, each extra input's value].
   The video webcam fires it when the connection is "connected"; video and
   audio fire it again whenever the server asks with a `send_input` message on
   the "text" data channel (the audio component only then). Its trigger mode is
   "once": no second tick while one is pending.
4. Closing an audio stream, the page calls `quit_output_stream({"webrtc_id"})`.

`webrtc_components` reads the components from a /config; the rest are the calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from bench.clients.gradio_config import get_config
from bench.errors import BenchError

TICK_TIMEOUT_S = 10.0  # queue join -> process_completed of `set_input_gradio` (it only stores the arguments)


@dataclass(frozen=True)
class WebRTCComponent:
    """One fastrtc `WebRTC` component of a Gradio app: what a page needs to stream through it."""

    root: str  # the app's API root as the page uses it, e.g. http://127.0.0.1:7860/gradio_api
    component_id: int
    modality: str  # "video", "audio" or "audio-video"
    mode: str  # "send-receive", "receive" or "send"
    variant: str  # "wave" or "textbox": decides the shape of the component's value
    tick_fn_index: int | None  # the `tick` dependency that runs `set_input`; None when the app has none
    extra_labels: tuple[str, ...]  # the tick's other inputs (e.g. a dropdown), in order
    extra_values: tuple[Any, ...]  # their values as the page first shows them (`props.value`)

    def value(self, webrtc_id: str) -> Any:
        """The component's value while streaming: the page sends it as the tick's first input.

        An audio component that sends (and a textbox variant) holds `{"textbox", "webrtc_id"}`, any other the id.
        """
        if self.variant == "textbox" or (self.modality == "audio" and self.mode in ("send-receive", "send")):
            return {"textbox": "", "webrtc_id": webrtc_id}
        return webrtc_id

    def tick_data(self, webrtc_id: str, inputs: dict[str, Any]) -> list[Any]:
        """The tick's `data`: the extra inputs keep their shown values unless `inputs` names their label."""
        extras = [inputs.get(label, value) for label, value in zip(self.extra_labels, self.extra_values, strict=True)]
        return [self.value(webrtc_id), *extras]


def webrtc_components(config: dict[str, Any]) -> list[WebRTCComponent]:
    """Every fastrtc `WebRTC` component in a Gradio app's /config, in the config's order.

    The API root is the config's `root` (or the component's `root_url`) plus its `api_prefix`, which is
    where the page sends every call.
    """
    components = {c["id"]: c for c in config.get("components", [])}
    found = []
    for component in config.get("components", []):
        if component.get("type") != "webrtc":
            continue
        props = component.get("props", {})
        tick = next(
            (d for d in config.get("dependencies", []) if [component["id"], "tick"] in d.get("targets", [])), None
        )
        extras = [components[i] for i in tick["inputs"][1:]] if tick else []  # fastrtc puts the component first
        root = str(props.get("root_url") or config["root"]).rstrip("/")
        found.append(
            WebRTCComponent(
                root=root + config.get("api_prefix", "/gradio_api"),
                component_id=component["id"],
                modality=props.get("modality", "video"),
                mode=props.get("mode", "send-receive"),
                variant=props.get("variant", "wave"),
                tick_fn_index=tick["id"] if tick else None,
                extra_labels=tuple(str(c.get("props", {}).get("label") or c.get("type")) for c in extras),
                extra_values=tuple(c.get("props", {}).get("value") for c in extras),
            )
        )
    return found


async def find_webrtc_component(http: httpx.AsyncClient, url: str, modality: str) -> WebRTCComponent | None:
    """The app's first send-receive `WebRTC` component of `modality`; None when `url` serves no such Gradio app
    (a FastRTC `Stream` mounted on FastAPI answers /config with 404)."""
    try:
        config = await get_config(http, url)
    except BenchError:
        return None
    matching = (c for c in webrtc_components(config) if c.modality == modality and c.mode == "send-receive")
    return next(matching, None)


async def call_server(
    http: httpx.AsyncClient, component: WebRTCComponent, session_hash: str, fn_name: str, data: Any
) -> httpx.Response:
    """Call one of the component's `@server` functions as Gradio's page does (note the trailing slash)."""
    body = {"data": data, "component_id": component.component_id, "fn_name": fn_name, "session_hash": session_hash}
    return await http.post(f"{component.root}/component_server/", json=body)


async def tick(http: httpx.AsyncClient, component: WebRTCComponent, session_hash: str, data: list[Any]) -> str | None:
    """Run the tick dependency (`set_input`) through the queue and wait until it completed; why not, if it failed.

    Like Gradio's page: join, then follow `/queue/data` for this session until the event completes.
    """
    body = {
        "data": data,
        "event_data": None,
        "fn_index": component.tick_fn_index,
        "trigger_id": component.component_id,
        "session_hash": session_hash,
    }
    joined = await http.post(f"{component.root}/queue/join", json=body)
    if joined.status_code != 200:
        return f"queue/join answered {joined.status_code}: {joined.text[:200]}"
    event_id = joined.json().get("event_id")
    params = {"session_hash": session_hash}
    async with http.stream("GET", f"{component.root}/queue/data", params=params, timeout=TICK_TIMEOUT_S) as events:
        async for line in events.aiter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                if message.get("success"):
                    return None
                return str((message.get("output") or {}).get("error") or "set_input_gradio failed")
            if message.get("msg") == "close_stream":
                break
    return "the event stream closed before the tick completed"
