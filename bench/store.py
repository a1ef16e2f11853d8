"""The run directory: the one source of truth for reports and checks. Only persistence here.

Every file is written to a temporary name and renamed, so a crash or Ctrl-C
never leaves half a file; samples and summary are rewritten after each case,
so finished cases survive an interrupted run.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from bench.errors import UsageError

SAMPLES = "samples.parquet"
SUMMARY = "summary.json"
RUN = "run.json"
LOGS = "logs"


def new_run_dir(root: Path, scenario_name: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", scenario_name)[:60] or "scenario"
    path = root / f"{stamp}-{safe}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / f"{stamp}-{safe}-{suffix}"
    (path / LOGS).mkdir(parents=True)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=_json_default) + "\n").encode())


def read_samples(path: Path) -> pd.DataFrame:
    """Read by path and on this thread: pandas hands pyarrow a file object and pyarrow's thread pool can then
    abort or hang the interpreter at exit (apache/arrow#34314, #50482; seen here as exit -6 after a clean run)."""
    return pq.read_table(str(path), use_threads=False).to_pandas()


def atomic_write_parquet(path: Path, frame: pd.DataFrame) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class RunData:
    """A run directory read back: what reports, compare and check consume."""

    path: Path
    summary: dict[str, Any]
    run: dict[str, Any]
    samples: pd.DataFrame

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id", self.path.name))

    def case(self, case_id: str) -> dict[str, Any] | None:
        return next((c for c in self.summary.get("cases", []) if c["case"] == case_id), None)

    def measured(self, family: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per case, the measured values of `latency_ms` (shown frames) or `event_latency_ms` after the warm-up,
        in capture order per launch, and the launch of each: what every interval and comparison reads."""
        frame = self.samples
        if not len(frame) or family not in frame:
            return {}
        frame = frame[~frame["warmup"]]
        if family == "latency_ms":
            frame = frame[frame["status"] == "ok"]
        frame = frame.dropna(subset=[family]).sort_values(["case", "repeat", "user", "capture_s"])
        return {
            case: (group[family].to_numpy(float), group["repeat"].to_numpy(int))
            for case, group in frame.groupby("case", sort=False)
        }

    def case_samples(self, case_id: str, measured_only: bool = True) -> pd.DataFrame:
        if not len(self.samples):
            return self.samples
        frame = self.samples[self.samples["case"] == case_id]
        if measured_only and len(frame):
            frame = frame[~frame["warmup"]]
        return frame


def load_run(path: str | Path) -> RunData:
    """Read a run directory; a missing or unreadable one is a UsageError naming the file."""
    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"{root}: not a run directory (expected a folder with {SUMMARY})")
    summary = _read_json(root / SUMMARY)
    run = _read_json(root / RUN) if (root / RUN).exists() else {}
    samples_path = root / SAMPLES
    try:
        samples = read_samples(samples_path) if samples_path.exists() else pd.DataFrame()
    except (OSError, ValueError) as exc:
        raise UsageError(f"{samples_path}: cannot read samples: {exc}") from exc
    return RunData(root, summary, run, samples)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: missing (not a finished run directory?)") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: unreadable: {exc}") from exc


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
