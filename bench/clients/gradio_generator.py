"""Clients for Gradio generator events (docs/PROTOCOLS.md, "Gradio generator outputs and HLS").

A generator's outputs stream as `process_generating` SSE messages: the first
carries each output's whole value, later ones diffs against the previous value
(`replace` / `append` / `add` / `delete` edits, applied as Gradio's JS client
does). Two clients see them:

- `GradioSSEClient` does what the browser does: join the queue with the
  event's fn_index / trigger_id from /config, follow the SSE stream, rebuild
  each output from its diffs, load each new image from its URL and decode it.
- `GradioClientLibraryClient` is what a Python user writes: `gradio_client`'s
  `Client(url).submit(...)`, reading outputs as the job's iterator does.

Either submits again whenever the generator ends, until the case's duration is
up, so a case holds enough items. Sample ids are `run * RUN_STRIDE + item`, unique
over the case. An item stamped by the app (the marker and `stamps` output of
targets/gradio_generator.py, or its "t<i>@<perf_counter>" tokens) is timed from
its yield; a plain app's items only have arrival times, so they give first-item
and inter-item times (`ClientResult.metrics`) but no latency samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import httpx
import numpy as np

from bench.clients.base import ClientConfig, stalled
from bench.clients.gradio_config import event_choice, get_config, page_values
from bench.errors import ProtocolError
from bench.media.camera import VirtualCamera
from bench.media.marker import decode_marker
from bench.records import CLIENT_ERROR, ClientResult, Receipt, Send, SessionRecord

RUN_STRIDE = 100_000  # sample id = run * RUN_STRIDE + item index within the run (a long LLM reply fits)
USER = 0  # the one user these clients drive
GRACE_S = 1.0  # at the deadline, how long images already announced may take to load
STALL_S = 20.0  # a live Gradio server sends at least a heartbeat every 15 s: more silence is a stall
CANCEL_TIMEOUT_S = 2.0  # the server answers /cancel only once the generator's current step is over
TOKEN = re.compile(r"t(\d+)@(\d+\.\d+) ")
NO_STAMPS = "no yield stamps: inter-item and first-item times only"


@dataclass(frozen=True)
class GeneratorEvent:
    """What a browser needs to trigger one generator dependency and read its outputs."""

    root: str  # e.g. http://127.0.0.1:7860/gradio_api
    fn_index: int
    trigger_id: int | None
    api_name: str | None
    defaults: list[Any]  # every input's current value, as the page would send them
    output_count: int
    image: int | None  # position of the first image output
    text: int | None  # position of the first textbox output
    stamps: int | None  # position of a JSON output, where our target puts its yield stamps


async def discover_generator_event(
    http: httpx.AsyncClient, url: str, api_name: str | None = None, inputs: Mapping[str, Any] | None = None
) -> GeneratorEvent:
    """The dependency named `api_name`, else the first generator (`types.generator` in /config) with an image or
    textbox output: what a user's click would run."""
    config = await get_config(http, url)
    components = {c["id"]: c for c in config.get("components", [])}
    for index, dependency in enumerate(config.get("dependencies", [])):
        types = dependency.get("types") or {}
        if not dependency.get("backend_fn") or not types.get("generator") or types.get("cancel"):
            continue
        if api_name and dependency.get("api_name") != api_name.lstrip("/"):
            continue
        outputs = [components.get(i, {}).get("type") for i in dependency.get("outputs", [])]
        image, text = _first(outputs, "image"), _first(outputs, "textbox")
        if image is None and text is None:
            continue
        targets = dependency.get("targets") or []
        return GeneratorEvent(
            root=url + config.get("api_prefix", "/gradio_api"),
            fn_index=dependency.get("id", index),
            trigger_id=targets[0][0] if targets else None,
            api_name=dependency.get("api_name"),
            defaults=page_values([components.get(i, {}) for i in dependency.get("inputs", [])], inputs),
            output_count=len(outputs),
            image=image,
            text=text,
            stamps=_first(outputs, "json"),
        )
    named = f" named {api_name!r}" if api_name else ""
    raise ProtocolError(f"{url}: no generator event{named} with an image or textbox output found in /config")


def _first(types: list[str | None], wanted: str) -> int | None:
    return types.index(wanted) if wanted in types else None


def apply_diff(value: Any, diff: list[list[Any]]) -> Any:
    """Gradio's streaming diff (client/js/src/utils/stream.ts `apply_diff`): edits [action, path, value]."""
    for action, path, item in diff:
        if not path:
            if action == "replace":
                value = item
            elif action == "append":
                value = value + item
            else:
                raise ProtocolError(f"unsupported diff action {action!r} at the root")
            continue
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        if action == "replace":
            parent[last] = item
        elif action == "append":
            parent[last] += item
        elif action == "add" and isinstance(parent, list):
            parent.insert(int(last), item)
        elif action == "add":
            parent[last] = item
        elif action == "delete":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise ProtocolError(f"unknown diff action {action!r}")
    return value


def read_stamp(value: Any) -> tuple[int, float] | None:
    """Our target's `stamps` output, {"item": index, "yield_s": perf_counter}, or None for anything else."""
    if isinstance(value, dict) and isinstance(value.get("item"), int) and isinstance(value.get("yield_s"), float):
        return value["item"], value["yield_s"]
    return None


@dataclass
class _Run:
    """One submission of the generator: when it was sent and what it showed."""

    index: int
    submit_s: float
    shown_s: list[float] = field(default_factory=list)
    yields_s: list[float] = field(default_factory=list)
    arrivals: int = 0  # items known only by their arrival (no stamp)
    last_image: str | None = None  # URL or path of the image shown last: a new one is a new item
    last_text: str = ""
    tokens: set[int] = field(default_factory=set)


class _Items:
    """What the user saw of the generator, over all its runs: items become samples and metrics.

    Each client records from one thread only (the event loop, or gradio_client's worker thread).
    """

    def __init__(self, result: ClientResult) -> None:
        self.result = result
        self.runs: list[_Run] = []
        self.wrong_ids = 0

    def start_run(self) -> _Run:
        run = _Run(len(self.runs), time.perf_counter())
        self.runs.append(run)
        return run

    def yielded(self, run: _Run, index: int, yield_s: float) -> int:
        """The app yielded item `index` of `run` at `yield_s` (its stamp): the sample's origin."""
        sample_id = run.index * RUN_STRIDE + index
        self.result.origin_times[sample_id] = yield_s
        self.result.sends.append(Send(USER, sample_id, yield_s))
        run.yields_s.append(yield_s)
        return sample_id

    def shown(self, run: _Run, sample_id: int, recv_s: float, stages: dict[str, float] | None = None) -> None:
        self.result.receipts.append(Receipt(USER, sample_id, recv_s, stages or {}))
        run.shown_s.append(recv_s)

    def arrived(self, run: _Run, recv_s: float) -> None:
        """An item without a stamp: it counts by its arrival alone."""
        run.arrivals += 1
        self.shown(run, run.index * RUN_STRIDE + run.arrivals - 1, recv_s)

    def image(
        self,
        run: _Run,
        stamp: tuple[int, float] | None,
        rgb: np.ndarray | None,
        recv_s: float,
        stages: dict[str, float],
    ) -> None:
        """A new image was displayed; its marker must name the item its stamp says (else it is not counted)."""
        if stamp is None:
            self.arrived(run, recv_s)
            return
        index = stamp[0]
        sample_id = run.index * RUN_STRIDE + index
        reading = decode_marker(rgb) if rgb is not None else None
        if reading is None:
            self.result.undecoded += 1
        elif reading.frame_id != index:
            self.wrong_ids += 1
        else:
            self.shown(run, sample_id, recv_s, stages)

    def text(self, run: _Run, text: Any, recv_s: float) -> None:
        """The text output now reads `text`: each new stamped token is an item; unstamped, each change is one."""
        if not isinstance(text, str) or text == run.last_text:
            return
        run.last_text = text
        tokens = [(int(i), float(s)) for i, s in TOKEN.findall(text)]
        if not tokens:
            self.arrived(run, recv_s)
            return
        for index, yield_s in tokens:
            if index not in run.tokens:
                run.tokens.add(index)
                self.shown(run, self.yielded(run, index, yield_s), recv_s)

    def finish(self, record: SessionRecord) -> None:
        """Per-run first-item and inter-item times into the metrics; a warning when nothing was stamped."""
        first_item, gaps, rates, yield_gaps = [], [], [], []
        for run in self.runs:
            shown = sorted(run.shown_s)
            if shown:
                first_item.append((shown[0] - run.submit_s) * 1000)
            gaps += [(b - a) * 1000 for a, b in itertools.pairwise(shown)]
            if len(shown) > 1 and shown[-1] > shown[0]:
                rates.append((len(shown) - 1) / (shown[-1] - shown[0]))
            stamps = sorted(run.yields_s)
            yield_gaps += [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
        if first_item:
            record.phases_ms["first_item_ms"] = first_item[0]  # a cold start: the app's first call
        self.result.metrics.update(
            first_item_ms=first_item,
            inter_item_ms=gaps,
            items_per_s=rates,
            runs=len(self.runs),
            items=sum(len(r.shown_s) for r in self.runs),
            unstamped_items=sum(r.arrivals for r in self.runs),
            wrong_ids=self.wrong_ids,
        )
        if yield_gaps:
            self.result.metrics["yield_interval_ms"] = yield_gaps  # the app's own pacing, apart from delivery
        if any(r.arrivals for r in self.runs):
            self.result.warnings.append(NO_STAMPS)
        if self.wrong_ids:
            self.result.warnings.append(
                f"{self.wrong_ids} images showed another item than their stamp said: not counted as displayed"
            )


def _one_user(config: ClientConfig, result: ClientResult) -> bool:
    """Generators are driven by one user: with more, sample ids (keyed per run) would collide across users."""
    if config.users == 1:
        return True
    result.client_errors.append(
        f"users = {config.users}: the gradio-generator clients drive one user (items are keyed per run, not per user)"
    )
    return False


def _session(event: GeneratorEvent, result: ClientResult) -> SessionRecord:
    """The one user's session record; the event's output kind and name noted as app settings."""
    result.app_settings.update(output="image" if event.image is not None else "text", api_name=event.api_name)
    record = SessionRecord(USER)
    result.sessions = [record]
    return record


def _fail(record: SessionRecord, result: ClientResult, error: str) -> None:
    """The session failed; the first reason is the one kept (later ones are its consequences)."""
    if record.status == "ok":
        record.status, record.error = "failed", error
        result.errors.append(f"user {record.user}: {error}")


def _decode_rgb(data: bytes) -> np.ndarray | None:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@dataclass
class _Page:
    """One browser tab on the app: its session, its event, and what it measured."""

    http: httpx.AsyncClient
    event: GeneratorEvent
    config: ClientConfig
    result: ClientResult
    record: SessionRecord
    items: _Items
    stop_at: float
    session_hash: str = field(default_factory=lambda: secrets.token_hex(6))
    fetches: set[asyncio.Task[None]] = field(default_factory=set)
    cancels: set[asyncio.Task[None]] = field(default_factory=set)

    def fail(self, error: str) -> None:
        _fail(self.record, self.result, error)


class GradioSSEClient:
    """The browser: queue/join, then the SSE stream of `process_generating` diffs; images loaded from their URLs."""

    async def run(self, camera: VirtualCamera, config: ClientConfig) -> ClientResult:
        result = ClientResult()
        if not _one_user(config, result):
            return result
        async with httpx.AsyncClient(timeout=30.0) as http:
            event = await discover_generator_event(http, config.url, **event_choice(config.params))
            record = _session(event, result)
            page = _Page(http, event, config, result, record, _Items(result), camera.started + config.duration_s)
            started = time.perf_counter()
            while time.perf_counter() < page.stop_at and record.status == "ok":
                await self._submit(page)
            record.received_s = time.perf_counter() - started
            page.items.finish(record)
            if page.cancels:
                await asyncio.wait(page.cancels, timeout=CANCEL_TIMEOUT_S)
        return result

    async def _submit(self, page: _Page) -> None:
        """One click: join the queue, follow the event until it completes, or press Stop at the deadline."""
        event, record = page.event, page.record
        run = page.items.start_run()
        payload = {
            "data": list(event.defaults),
            "event_data": None,
            "fn_index": event.fn_index,
            "trigger_id": event.trigger_id,
            "session_hash": page.session_hash,
        }
        try:
            response = await page.http.post(f"{event.root}/queue/join", json=payload)
        except httpx.HTTPError as exc:
            page.fail(f"queue/join failed: {type(exc).__name__}: {exc}")
            return
        record.phases_ms.setdefault("join_ms", (time.perf_counter() - run.submit_s) * 1000)
        if response.status_code != 200:
            record.status = "rejected"
            record.error = f"queue/join answered {response.status_code}: {response.text[:200]}"
            return
        event_id = response.json().get("event_id")
        messages: asyncio.Queue[tuple[dict[str, Any] | BaseException | None, float]] = asyncio.Queue()
        reader = asyncio.create_task(self._read(page, messages))
        try:
            if await self._follow(page, run, messages) and event_id:
                page.cancels.add(asyncio.create_task(self._cancel(page, event_id)))
        except Exception as exc:  # a bug of ours, kept apart from the target's faults
            page.fail(f"{CLIENT_ERROR}: {page.result.add_client_error('user 0 event stream', exc)}")
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if page.fetches:
                await asyncio.wait(set(page.fetches), timeout=GRACE_S)
                for task in page.fetches:
                    task.cancel()

    async def _read(self, page: _Page, messages: asyncio.Queue[Any]) -> None:
        """The event stream, each message stamped when it arrived; None when it ends, the exception if it breaks."""
        try:
            async with page.http.stream(
                "GET", f"{page.event.root}/queue/data", params={"session_hash": page.session_hash}, timeout=None
            ) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        messages.put_nowait((json.loads(line[5:]), time.perf_counter()))
        except (httpx.HTTPError, ValueError) as exc:
            messages.put_nowait((exc, time.perf_counter()))
            return
        messages.put_nowait((None, time.perf_counter()))

    async def _follow(self, page: _Page, run: _Run, messages: asyncio.Queue[Any]) -> bool:
        """Apply the event's messages until it ends; True when the deadline came first (the run goes on)."""
        values: list[Any] | None = None
        heard_s = time.perf_counter()
        while True:
            now = time.perf_counter()
            wait = min(STALL_S - (now - heard_s), page.stop_at - now)
            try:
                message, recv_s = await asyncio.wait_for(messages.get(), max(wait, 0.0))
            except TimeoutError:
                if time.perf_counter() >= page.stop_at:
                    return True
                page.fail(f"nothing came over the event stream for {STALL_S:.0f} s ({stalled(page.config)})")
                return False
            heard_s = recv_s
            if message is None:
                return False
            if isinstance(message, BaseException):
                page.fail(f"event stream broke: {type(message).__name__}: {message}")
                return False
            kind = message.get("msg")
            if kind == "process_starts":
                page.record.phases_ms.setdefault("queue_wait_ms", (recv_s - run.submit_s) * 1000)
            elif kind == "process_generating":
                data = message.get("output", {}).get("data", [])
                try:
                    values = data if values is None else [apply_diff(v, d) for v, d in zip(values, data, strict=True)]
                except (ProtocolError, LookupError, TypeError, ValueError) as exc:
                    page.fail(f"process_generating carried a diff that does not apply: {type(exc).__name__}: {exc}")
                    return False
                self._show(page, run, values, recv_s)
            elif kind == "process_completed":
                if not message.get("success", True):
                    error = message.get("output", {}).get("error") or "the generator failed"
                    page.fail(f"process_completed: {error}")
                return False
            elif kind == "unexpected_error":
                page.fail(f"unexpected_error: {message.get('message')}")
                return False

    def _show(self, page: _Page, run: _Run, values: list[Any], recv_s: float) -> None:
        """What the page displays for this message: a new image (loaded from its URL) or the grown text."""
        event = page.event
        if event.image is None:
            if event.text is not None:
                page.items.text(run, values[event.text], recv_s)
            return
        image = values[event.image]
        url = image.get("url") if isinstance(image, dict) else None
        if not url or url == run.last_image:
            return
        run.last_image = url
        stamp = read_stamp(values[event.stamps]) if event.stamps is not None else None
        if stamp is not None:
            page.items.yielded(run, *stamp)
        url = url if url.startswith("http") else page.config.url + url
        task = asyncio.create_task(self._load(page, run, url, recv_s, stamp))
        page.fetches.add(task)
        task.add_done_callback(page.fetches.discard)

    async def _load(self, page: _Page, run: _Run, url: str, event_s: float, stamp: tuple[int, float] | None) -> None:
        """Load the image as the page's <img> does; it is displayed once decoded."""
        try:
            response = await page.http.get(url)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            page.result.errors.append(f"user {page.record.user}: fetching an output failed: {exc}")
            return
        try:
            rgb = _decode_rgb(response.content)
            done = time.perf_counter()
            if rgb is not None:
                page.record.received_frame(rgb.shape[1], rgb.shape[0])
                page.record.received_bytes += len(response.content)
            stages = {"fetch_ms": (done - event_s) * 1000}
            if stamp is not None:
                stages["yield_to_event_ms"] = (event_s - stamp[1]) * 1000
            page.items.image(run, stamp, rgb, done, stages)
        except Exception as exc:  # a bug of ours, kept apart from the target's faults
            page.fail(f"{CLIENT_ERROR}: {page.result.add_client_error('user 0 output decode', exc)}")

    async def _cancel(self, page: _Page, event_id: str) -> None:
        """The Stop button at the deadline: frees the app's worker now rather than when it notices we left."""
        body = {"session_hash": page.session_hash, "fn_index": page.event.fn_index, "event_id": event_id}
        with contextlib.suppress(httpx.HTTPError):
            await page.http.post(f"{page.event.root}/cancel", json=body, timeout=CANCEL_TIMEOUT_S)


class GradioClientLibraryClient:
    """`gradio_client.Client(url).submit(...)`, outputs read as the Job's iterator reads them.

    The library appends each output (files already downloaded) to `job.outputs()`, which its
    iterator polls every 1 ms; this client polls the same list at the same rate, which also lets
    it cancel the job at the deadline instead of blocking in `next()`.
    """

    POLL_S = 0.001

    async def run(self, camera: VirtualCamera, config: ClientConfig) -> ClientResult:
        result = ClientResult()
        if not _one_user(config, result):
            return result
        async with httpx.AsyncClient(timeout=30.0) as http:
            event = await discover_generator_event(http, config.url, **event_choice(config.params))
        record = _session(event, result)
        items = _Items(result)
        # a download the library finishes after the cancel may land while the directory is removed
        with tempfile.TemporaryDirectory(prefix="streambench-gradio-client-", ignore_cleanup_errors=True) as downloads:
            await asyncio.to_thread(
                self._drive, event, config, record, items, camera.started + config.duration_s, downloads
            )
        items.finish(record)
        return result

    def _drive(
        self,
        event: GeneratorEvent,
        config: ClientConfig,
        record: SessionRecord,
        items: _Items,
        stop_at: float,
        downloads: str,
    ) -> None:
        from gradio_client import Client

        started = time.perf_counter()
        try:
            client = Client(config.url, verbose=False, download_files=downloads)
        except Exception as exc:  # the library raises bare Exceptions and httpx errors alike
            _fail(record, items.result, f"gradio_client could not connect: {type(exc).__name__}: {exc}")
            return
        record.phases_ms["connect_ms"] = (time.perf_counter() - started) * 1000
        cancelling: threading.Thread | None = None
        try:
            while time.perf_counter() < stop_at and record.status == "ok":
                cancelling = self._submit(client, event, record, items, stop_at)
        except (httpx.HTTPError, OSError) as exc:
            _fail(record, items.result, f"the target broke the connection: {type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug of ours (or the library's), kept apart from the target's faults
            _fail(record, items.result, f"{CLIENT_ERROR}: {items.result.add_client_error('user 0 gradio_client', exc)}")
        finally:
            record.received_s = time.perf_counter() - started
            if cancelling is not None:
                cancelling.join(CANCEL_TIMEOUT_S)  # teardown only: the measurement ended at the deadline
            client.close()

    def _submit(
        self, client: Any, event: GeneratorEvent, record: SessionRecord, items: _Items, stop_at: float
    ) -> threading.Thread | None:
        """One job until it completes; the thread cancelling it when the deadline (or a stall) came first."""
        run = items.start_run()
        job = client.submit(*event.defaults, fn_index=event.fn_index)
        seen = 0
        heard_s = run.submit_s
        while True:
            done = job.done()
            outputs = job.outputs()
            now = time.perf_counter()
            for output in outputs[seen:]:
                self._show(event, run, items, record, output, now)
                heard_s = now
            seen = len(outputs)
            if done:
                break
            if now >= stop_at or now - heard_s > STALL_S:
                # job.cancel() blocks until the app's current step ends (its /cancel answers then): not our time
                cancelling = threading.Thread(target=job.cancel, daemon=True)
                cancelling.start()
                if now < stop_at:
                    _fail(record, items.result, f"no output came back for {STALL_S:.0f} s (target stalled)")
                return cancelling
            time.sleep(self.POLL_S)
        try:
            job.result()  # raises what the app raised
        except Exception as exc:
            _fail(record, items.result, f"the job failed: {type(exc).__name__}: {exc}")
        return None

    def _show(
        self, event: GeneratorEvent, run: _Run, items: _Items, record: SessionRecord, output: Any, recv_s: float
    ) -> None:
        values = list(output) if event.output_count > 1 and isinstance(output, tuple) else [output]
        if event.image is None:
            if event.text is not None:
                items.text(run, values[event.text], recv_s)
            return
        path = values[event.image]
        if not isinstance(path, str) or path == run.last_image:
            return
        run.last_image = path
        stamp = read_stamp(values[event.stamps]) if event.stamps is not None else None
        if stamp is not None:
            items.yielded(run, *stamp)
        rgb = cv2.imread(path, cv2.IMREAD_COLOR)
        if rgb is not None:
            rgb = cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB)
            record.received_frame(rgb.shape[1], rgb.shape[0])
            record.received_bytes += os.path.getsize(path)
        items.image(run, stamp, rgb, recv_s, {})
