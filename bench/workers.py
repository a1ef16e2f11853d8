"""Client workers: where a case's users run.

One process (the default) runs every user on one event loop. `--workers N` spreads
the users over N client processes on Ray (started embedded, on this machine);
`--cluster ADDRESS` joins a running Ray cluster, so the load can come from other
machines. Nothing distributed starts unless asked.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerSpec:
    """How many client processes a case's users are spread over, and on which Ray cluster (None: embedded)."""

    processes: int = 1
    cluster: str | None = None

    @property
    def distributed(self) -> bool:
        return self.processes > 1 or self.cluster is not None
