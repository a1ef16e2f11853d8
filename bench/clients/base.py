"""The one interface every transport client implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.media.camera import VirtualCamera
from bench.records import ClientResult


@dataclass
class ClientConfig:
    """What a client needs to drive one case: where, how long, how many users, which inputs."""

    url: str
    duration_s: float
    users: int = 1
    transform: str = "identity"
    params: dict[str, Any] = field(default_factory=dict)
    network: Any = None  # a bench.network NetworkProfile: the WebRTC client routes its media through relays


def stalled(config: ClientConfig) -> str:
    """Who to blame for silence: behind a lossy network profile it may be the network, not the target."""
    if config.network is None:
        return "target stalled"
    return f"target stalled, or the network profile {config.network.name!r} let nothing through"


class Client(Protocol):
    async def run(self, camera: VirtualCamera, config: ClientConfig) -> ClientResult:
        """Drive the target for `config.duration_s` from `camera`'s frames; never raise for a
        refused or failed session (record it in `ClientResult.sessions`)."""
        ...
