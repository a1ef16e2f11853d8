"""Network profiles: what the impairment relay does to each direction of a client's path.

The named access-network profiles copy WebPageTest's connectivity profiles
(`www/settings/connectivity.ini.sample`, catchpoint/WebPageTest at commit
4e157836): `bwIn` / `bwOut` in bit/s become `down` / `up` rate caps, and
`latency` is the round-trip time, split in half each way as WebPageTest's own
agent does (`internal/traffic_shaping.py`, catchpoint/WebPageTest.agent:
`netem delay rtt/2` on the inbound and on the outbound interface). The loss
profiles are synthetic, for asking how a transport copes with loss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

WPT_CONNECTIVITY = (
    "https://github.com/catchpoint/WebPageTest/blob/4e157836cdfb51eb7db93fc7b2488a0582ad1a6c/"
    "www/settings/connectivity.ini.sample"
)


@dataclass(frozen=True)
class GilbertElliott:
    """Bursty loss: a two-state Markov chain per packet (as netem's `loss gemodel p r 1-h 1-k`).

    Before each packet the chain moves good -> bad with probability `p` and
    bad -> good with `r`; the packet is then lost with the state's loss
    probability. With `loss_bad` 1 and `loss_good` 0 a burst lasts 1 / r
    packets on average and p / (p + r) of all packets are lost.
    """

    p: float
    r: float
    loss_bad: float = 1.0
    loss_good: float = 0.0

    def __post_init__(self) -> None:
        for name in ("p", "loss_bad", "loss_good"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 < self.r <= 1:
            raise ValueError(f"r must be in (0, 1] (a bad state that never ends loses everything), got {self.r}")


@dataclass(frozen=True)
class Link:
    """One direction of the path. Order of effects: loss, then the rate cap's queue, then delay + jitter.

    `queue_ms` is the queue in front of the rate cap, as time at the capped
    rate: UDP drops at the tail when it is full, TCP stops reading instead
    (back-pressure). Rates count payload bytes (no IP / UDP / TCP headers).
    """

    delay_ms: float = 0
    jitter_ms: float = 0
    loss: float = 0
    burst: GilbertElliott | None = None
    rate_kbps: float | None = None
    queue_ms: float = 100

    def __post_init__(self) -> None:
        for name in ("delay_ms", "jitter_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        # 1.0 is refused: over TCP a segment that is always lost is retransmitted forever
        if not 0 <= self.loss < 1:
            raise ValueError(f"loss must be in [0, 1), got {self.loss}")
        if self.burst is not None and self.loss:
            raise ValueError("give either loss (random) or burst (Gilbert-Elliott), not both")
        if self.rate_kbps is not None and self.rate_kbps <= 0:
            raise ValueError(f"rate_kbps must be > 0, got {self.rate_kbps}")
        if self.queue_ms <= 0:
            raise ValueError(f"queue_ms must be > 0, got {self.queue_ms}")


@dataclass(frozen=True)
class NetworkProfile:
    """A path between client and target: `up` is client -> target, `down` is target -> client."""

    name: str
    up: Link
    down: Link
    source: str


def rtt(rtt_ms: float) -> NetworkProfile:
    """A pure round-trip delay, half of it each way."""
    half = Link(delay_ms=rtt_ms / 2)
    return NetworkProfile(f"rtt-{rtt_ms:g}", half, half, "symmetric RTT")


def _wpt(name: str, section: str, down_kbps: float, up_kbps: float, rtt_ms: float) -> NetworkProfile:
    source = (
        f"WebPageTest connectivity profile [{section}] ({WPT_CONNECTIVITY}): bwIn={down_kbps * 1000:.0f} "
        f"bwOut={up_kbps * 1000:.0f} bit/s, latency={rtt_ms:g} ms RTT, split {rtt_ms / 2:g} ms each way "
        "as WebPageTest's agent splits it"
    )
    return NetworkProfile(
        name,
        up=Link(delay_ms=rtt_ms / 2, rate_kbps=up_kbps),
        down=Link(delay_ms=rtt_ms / 2, rate_kbps=down_kbps),
        source=source,
    )


_BURST = GilbertElliott(p=0.05 / 0.95 / 3, r=1 / 3)  # mean burst 1 / r = 3 packets; p / (p + r) = 5 % lost
PROFILES: dict[str, NetworkProfile] = {
    "none": NetworkProfile("none", Link(), Link(), "no impairment: the relay's own cost only"),
    "3g": _wpt("3g", "3G", down_kbps=1600, up_kbps=768, rtt_ms=300),
    "4g": _wpt("4g", "4G", down_kbps=9000, up_kbps=9000, rtt_ms=170),
    "cable": _wpt("cable", "Cable", down_kbps=5000, up_kbps=1000, rtt_ms=28),
    "dsl": _wpt("dsl", "DSL", down_kbps=1500, up_kbps=384, rtt_ms=50),
    "loss-5": NetworkProfile(
        "loss-5", Link(loss=0.05), Link(loss=0.05), "synthetic: 5 % independent random loss each way, no delay"
    ),
    "loss-burst": NetworkProfile(
        "loss-burst",
        Link(burst=_BURST),
        Link(burst=_BURST),
        "synthetic: Gilbert-Elliott loss each way, mean burst 3 packets, 5 % of packets lost, no delay",
    ),
}

SHORTHAND = ("rtt_ms", "jitter_ms", "loss", "rate_kbps")
TABLE_KEYS = ("name", "up", "down", *SHORTHAND)
RTT_NAME = re.compile(r"rtt-(\d+(?:\.\d+)?)")
LINK_KEYS = tuple(f.name for f in fields(Link))
BURST_KEYS = tuple(f.name for f in fields(GilbertElliott))


def parse_network(value: str | dict[str, Any]) -> NetworkProfile:
    """A scenario's `network`: a profile name, `rtt-<ms>`, or a table.

    A table has `up` / `down` tables of Link fields and the shorthand keys,
    which apply to both directions (`rtt_ms` as half the RTT each way,
    `jitter_ms` and `loss` per direction); an `up` or `down` table overrides
    them for its direction, and `name` labels its cases (default "custom").
    Raises ValueError with one line saying what is allowed.
    """
    if isinstance(value, str):
        if match := RTT_NAME.fullmatch(value):
            return rtt(float(match.group(1)))
        if value not in PROFILES:
            raise ValueError(
                f"unknown network profile {value!r}; allowed: {', '.join(PROFILES)}, rtt-<ms>, "
                f"or a table of {', '.join(TABLE_KEYS)}"
            )
        return PROFILES[value]
    if not isinstance(value, dict):
        raise ValueError(f"network must be a profile name or a table, got {type(value).__name__}")
    _check_keys("network", value, TABLE_KEYS)
    name = value.get("name", "custom")
    if not isinstance(name, str) or not name:
        raise ValueError(f"network.name must be a non-empty string, got {name!r}")
    both: dict[str, Any] = {key: _number(f"network.{key}", value[key]) for key in SHORTHAND[1:] if key in value}
    if "rtt_ms" in value:
        rtt_ms = _number("network.rtt_ms", value["rtt_ms"])
        if rtt_ms < 0:
            raise ValueError(f"network.rtt_ms must be >= 0, got {rtt_ms:g}")
        both["delay_ms"] = rtt_ms / 2
    up, down = (_link(direction, both, value.get(direction, {})) for direction in ("up", "down"))
    return NetworkProfile(name, up, down, "scenario")


def _link(direction: str, both: dict[str, Any], table: object) -> Link:
    where = f"network.{direction}"
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table of {', '.join(LINK_KEYS)}")
    _check_keys(where, table, LINK_KEYS)
    values = {**both, **{key: _number(f"{where}.{key}", item) for key, item in table.items() if key != "burst"}}
    if "burst" in table:
        values["burst"] = _burst(f"{where}.burst", table["burst"])
    try:
        return Link(**values)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _burst(where: str, table: object) -> GilbertElliott:
    if not isinstance(table, dict) or not {"p", "r"} <= table.keys():
        raise ValueError(f"{where} must be a table with p and r (optional: loss_bad, loss_good)")
    _check_keys(where, table, BURST_KEYS)
    try:
        return GilbertElliott(**{key: _number(f"{where}.{key}", item) for key, item in table.items()})
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _check_keys(where: str, table: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = [key for key in table if key not in allowed]
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in {where}; allowed: {', '.join(allowed)}")


def _number(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where} must be a number, got {value!r}")
    return float(value)
