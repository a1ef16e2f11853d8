"""User-space network impairment (no kernel netem here): profiles, and the UDP / TCP relays that apply them."""

from bench.network.profiles import PROFILES, GilbertElliott, Link, NetworkProfile, parse_network, rtt
from bench.network.relay import PathStats, RelayStats, TcpRelay, UdpRelay

__all__ = [
    "PROFILES",
    "GilbertElliott",
    "Link",
    "NetworkProfile",
    "PathStats",
    "RelayStats",
    "TcpRelay",
    "UdpRelay",
    "parse_network",
    "rtt",
]
