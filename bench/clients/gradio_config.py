"""Read any Gradio app's /config, and find a webcam `.stream()` event in it, as the browser does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from bench.errors import ProtocolError, TargetError


async def get_config(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """A Gradio app's /config, as the browser reads it; a TargetError when nothing answers, else a ProtocolError
    when the answer is not a Gradio app's."""
    try:
        response = await http.get(f"{url}/config")
    except httpx.ConnectError as exc:
        raise TargetError(f"nothing answers at {url}") from exc
    except httpx.HTTPError as exc:
        raise ProtocolError(f"{url} did not answer GET /config ({type(exc).__name__}: {exc})") from exc
    if not response.is_success:
        raise ProtocolError(f"{url} is not a Gradio app (GET /config answered {response.status_code})")
    try:
        config = response.json()
    except ValueError as exc:
        raise ProtocolError(f"{url} is not a Gradio app (GET /config answered no JSON)") from exc
    return config


@dataclass(frozen=True)
class StreamEvent:
    """What the browser needs to drive one `.stream()` dependency."""

    root: str  # e.g. http://127.0.0.1:7860/gradio_api
    fn_index: int
    trigger_id: int
    image_input: int  # position of the webcam image in the inputs
    defaults: list[Any]  # every input's current value, sent with each frame
    input_labels: list[str]
    mirror_webcam: bool
    stream_every: float  # the app's capture interval: the browser's timer reads it from /config
    chosen: frozenset[str] = frozenset()  # labels the case set itself (`inputs`): the case's transform keeps off


async def discover_stream_event(
    http: httpx.AsyncClient, url: str, api_name: str | None = None, inputs: Mapping[str, Any] | None = None
) -> StreamEvent:
    """The dependency named `api_name`, else the first one triggered by `stream` on an image."""
    config = await get_config(http, url)
    components = {c["id"]: c for c in config.get("components", [])}
    for index, dependency in enumerate(config.get("dependencies", [])):
        stream_targets = [t for t in dependency.get("targets", []) if t[1] == "stream"]
        if not stream_targets:
            continue
        if api_name and dependency.get("api_name") != api_name:
            continue
        components_in = [components[i] for i in dependency["inputs"]]
        images = [n for n, c in enumerate(components_in) if c.get("type") == "image"]
        if not images:
            continue
        image = components_in[images[0]]
        return StreamEvent(
            root=url + config.get("api_prefix", "/gradio_api"),
            fn_index=dependency.get("id", index),
            trigger_id=stream_targets[0][0],
            image_input=images[0],
            defaults=page_values(components_in, inputs),
            input_labels=input_labels(components_in),
            mirror_webcam=bool(image.get("props", {}).get("webcam_options", {}).get("mirror", True)),
            stream_every=float(dependency.get("stream_every") or 0.5),
            chosen=frozenset(inputs or {}),
        )
    named = f" named {api_name!r}" if api_name else ""
    raise ProtocolError(f"{url}: no webcam .stream() event{named} found in /config")


def set_input(event: StreamEvent, values: list[Any], label: str, value: Any) -> None:
    """Set the input whose label is `label` (our app names them transform / delay_ms); others keep defaults.

    An input the case set by label (`inputs`) keeps the case's value.
    """
    if label in event.input_labels and label not in event.chosen:
        values[event.input_labels.index(label)] = value


def input_labels(components: list[dict[str, Any]]) -> list[str]:
    """What the page shows above each input (its type when it has no label): how a user names it."""
    return [str(c.get("props", {}).get("label") or c.get("type")) for c in components]


def page_values(components: list[dict[str, Any]], chosen: Mapping[str, Any] | None = None) -> list[Any]:
    """Every input's value as the page sends it: its current value, or what the user chose for it by label.

    A dropdown choice may be given by what the page shows or by the value it sends.
    """
    values = [c.get("props", {}).get("value") for c in components]
    labels = input_labels(components)
    for label, value in (chosen or {}).items():
        if label not in labels:
            raise ProtocolError(f"the event has no input labelled {label!r} (its inputs: {', '.join(labels)})")
        index = labels.index(label)
        choices = components[index].get("props", {}).get("choices") or []
        shown = {str(pair[0]): pair[1] for pair in choices if isinstance(pair, list | tuple) and len(pair) == 2}
        values[index] = shown.get(str(value), value)
    return values


def event_choice(params: Mapping[str, Any]) -> dict[str, Any]:
    """The case's choice of event and inputs (scenario keys api_name, inputs), as the discover functions take it."""
    return {"api_name": params.get("api_name"), "inputs": params.get("inputs")}
