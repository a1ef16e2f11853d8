"""The last `bench fidelity` of each kind, kept as a small JSON file, so every synthetic case can say how far its
client was from Chromium on that transport, with when, where and on what software that was measured.

`bench fidelity` writes `<store>/<kind>.json` (default `./fidelity`, `--store DIR`); summaries read it from
$STREAMBENCH_FIDELITY_DIR (else `./fidelity`), then from the reference shipped in the repository's `fidelity/`.
A file that cannot be read, or was written by another version of this format, is skipped with one warning line:
a note is never worth a failed summary.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from bench.catalog import TARGET_KINDS
from bench.metadata import collect_environment
from bench.store import atomic_write_json

SCHEMA_VERSION = 1  # 1: first version
ENV_DIR = "STREAMBENCH_FIDELITY_DIR"
DEFAULT_DIR = Path("fidelity")
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "fidelity"
PACKAGES = ("gradio", "fastrtc", "aiortc")
# per kind, the latency metrics a case's note compares, and how the sentence names them
LATENCY_METRICS: dict[str, tuple[tuple[str, str], ...]] = {
    "gradio-stream": (("sent_to_shown_ms", "sent-to-shown p50"),),
    "fastrtc-webrtc": (("latency_p50_ms", "content latency p50"), ("latency_p95_ms", "p95")),
    "gradio-hls": (("glass_to_glass_p50_ms", "glass-to-glass p50"), ("glass_to_glass_p95_ms", "p95")),
}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricFidelity:
    """One compared metric: Chromium's value, our client's, and the run's verdict."""

    metric: str
    chromium: float | None
    synthetic: float | None
    chromium_over_synthetic: float | None  # one direction for every kind (the CLI tables differ per kind)
    agrees: bool


@dataclass(frozen=True)
class Machine:
    """What the numbers depend on, from bench.metadata (no hostname: the file is shipped)."""

    cpu_model: str
    cpu_count: int | None
    machine: str
    platform: str
    python: str
    load_avg: list[float]  # when the file was written: the machine may have been shared
    git_revision: str | None


@dataclass(frozen=True)
class StoredFidelity:
    kind: str
    client: str  # the synthetic client compared with Chromium
    date: str  # ISO 8601, UTC
    command: str
    settings: dict[str, Any]
    tolerance: float
    machine: Machine
    chromium: str | None  # `chromium --version`
    packages: dict[str, str | None]
    metrics: list[MetricFidelity]
    schema_version: int = SCHEMA_VERSION


_PARSE = TypeAdapter(StoredFidelity)


def measured(
    kind: str,
    rows: list[tuple[str, float | None, float | None, bool]],
    tolerance: float,
    settings: dict[str, Any],
    chromium: str | None,
) -> StoredFidelity:
    """A finished `bench fidelity` as stored: `rows` are (metric, Chromium, our client, agrees)."""
    environment = collect_environment()
    machine = Machine(**{f.name: environment[f.name] for f in fields(Machine)})
    return StoredFidelity(
        kind=kind,
        client=TARGET_KINDS[kind].client,
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        command=f"bench fidelity --kind {kind}",
        settings=settings,
        tolerance=tolerance,
        machine=machine,
        chromium=chromium,
        packages={name: environment["packages"].get(name) for name in PACKAGES},
        metrics=[MetricFidelity(m, theirs, ours, _ratio(theirs, ours), agrees) for m, theirs, ours, agrees in rows],
    )


def save(store_dir: Path, fidelity: StoredFidelity) -> Path:
    path = store_dir / f"{fidelity.kind}.json"
    atomic_write_json(path, asdict(fidelity))
    return path


def load(path: Path) -> StoredFidelity | None:
    """The file's record, or None (with a warning line) if it is unreadable or of another format version."""
    try:
        return _load(path, path.stat().st_mtime_ns)
    except FileNotFoundError:
        return None


def last_measured(kind: str, client: str | None) -> StoredFidelity | None:
    """The stored fidelity of `kind` for `client` (None: the kind's default client): the user's directory first,
    then the shipped reference. A case of another client (Chromium itself) finds none."""
    if kind not in LATENCY_METRICS:
        return None
    client = client or TARGET_KINDS[kind].client
    for directory in dict.fromkeys(d.resolve() for d in (Path(os.environ.get(ENV_DIR) or DEFAULT_DIR), SHIPPED_DIR)):
        found = load(directory / f"{kind}.json")
        if found is not None and found.client == client:
            return found
    return None


def fidelity_note(kind: str, client: str | None) -> str | None:
    """One sentence for a case's notes: how far its client read latency from Chromium's when last measured."""
    stored = last_measured(kind, client)
    if stored is None:
        return None
    by_metric = {m.metric: m for m in stored.metrics}
    parts = [
        f"{words} {_against(by_metric[metric].chromium_over_synthetic)}"
        for metric, words in LATENCY_METRICS[kind]
        if metric in by_metric and by_metric[metric].chromium_over_synthetic is not None
    ]
    if not parts:
        return None
    machine = stored.machine
    cpu = re.sub(r"\s+", " ", re.sub(r"\((R|TM)\)", "", machine.cpu_model)).strip()
    where = ", ".join(
        [stored.date[:10], f"{cpu}, {machine.cpu_count} cores", *([stored.chromium] if stored.chromium else [])]
    )
    return (
        f"our {stored.client} client read {' and '.join(parts)} what Chromium showed on this transport when last "
        f"measured ({where}, {stored.command})"
    )


@lru_cache(maxsize=32)
def _load(path: Path, mtime_ns: int) -> StoredFidelity | None:
    """Cached by modification time: a run rewrites its summary after every case, and warns once per file."""
    try:
        data = json.loads(path.read_text())
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != SCHEMA_VERSION:
            raise ValueError(f"format version {version!r}, this streambench reads {SCHEMA_VERSION}")
        stored = _PARSE.validate_python(data)
        if stored.kind != path.stem:
            raise ValueError(f"holds kind {stored.kind!r}")
    except (OSError, ValueError, ValidationError) as exc:
        message = str(exc).splitlines()[0]
        log.warning("streambench: ignoring stored fidelity %s: %s (rerun bench fidelity to replace it)", path, message)
        return None
    return stored


def _ratio(chromium: float | None, synthetic: float | None) -> float | None:
    return chromium / synthetic if chromium is not None and synthetic else None


def _against(ratio: float) -> str:
    """Chromium / ours as where our number stands: 1.17 -> "1.17x below", 0.68 -> "1.47x above"."""
    return f"{ratio:.2f}x below" if ratio >= 1 else f"{1 / ratio:.2f}x above"
