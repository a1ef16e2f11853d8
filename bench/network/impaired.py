"""Put a case's client behind the impairment relays, where the impairment is honest and cheap.

HTTP, SSE and WebSocket go through a `TcpRelay` in front of the target: the
client is simply given the relay's URL (Gradio builds its file URLs from the
Host header it is asked with, so output downloads stay on the impaired path).
WebRTC media goes through `UdpRelay`s: every candidate in both session
descriptions is rewritten to a relay in front of it (see `MediaPath`).

A real browser can use the TCP path as it is (open the relay's URL); its
WebRTC media would need the answer rewritten inside the page's signalling,
which the harness does not do for a browser.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlparse

from bench.network.profiles import NetworkProfile
from bench.network.relay import PathStats, TcpRelay, UdpRelay


@contextlib.asynccontextmanager
async def impaired_url(url: str, profile: NetworkProfile | None, seed: int = 0) -> AsyncIterator[tuple[str, list]]:
    """The URL the client should use, and the relays behind it (none without a profile)."""
    if profile is None:
        yield url, []
        return
    parsed = urlparse(url)
    relay = TcpRelay()
    host, port = await relay.start((parsed.hostname or "127.0.0.1", parsed.port or 80), profile, seed)
    try:
        yield f"{parsed.scheme}://{host}:{port}{parsed.path}".rstrip("/"), [relay]
    finally:
        await relay.close()


class MediaPath:
    """The UDP relays one WebRTC session's media crosses.

    Both descriptions are rewritten: the answer's candidates point at relays to
    the server, our offer's at relays to us (with the profile's directions
    swapped, since for those relays the server is the sender). Whichever pair
    ICE nominates, even one learned peer-reflexively, every packet crosses
    exactly one relay in the direction it travels.
    """

    def __init__(self, profile: NetworkProfile, seed: int = 0) -> None:
        self.profile = profile
        self.seed = seed
        self.relays: list[UdpRelay] = []
        self.reversed: list[UdpRelay] = []  # the offer's relays: for them the server is the client

    @property
    def stats(self) -> list[PathStats]:
        """Each relay's traffic with up meaning client -> target, whichever side the relay fronts."""
        return [r.stats.reversed() if r in self.reversed else r.stats for r in self.relays]

    async def offer(self, sdp: str) -> str:
        reverse = NetworkProfile(self.profile.name, self.profile.down, self.profile.up, self.profile.source)
        before = len(self.relays)
        sdp = await self._rewrite(sdp, reverse)
        self.reversed += self.relays[before:]
        return sdp

    async def answer(self, sdp: str) -> str:
        return await self._rewrite(sdp, self.profile)

    async def close(self) -> None:
        for relay in self.relays:
            await relay.close()

    async def _rewrite(self, sdp: str, profile: NetworkProfile) -> str:
        """`sdp` with each UDP candidate's address replaced by a relay to it."""
        lines = []
        for line in sdp.splitlines():
            fields = line.split()
            if line.startswith("a=candidate:") and len(fields) > 5 and fields[2].lower() == "udp":
                relay = UdpRelay()
                host, port = await relay.start((fields[4], int(fields[5])), profile, self.seed + len(self.relays))
                self.relays.append(relay)
                fields[4], fields[5] = host, str(port)
                line = " ".join(fields)
            lines.append(line)
        return "\r\n".join(lines) + "\r\n"
