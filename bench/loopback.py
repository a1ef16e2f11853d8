"""Keep the harness's own WebRTC traffic on 127.0.0.1 (PROTOCOLS.md, loopback ICE)."""

from __future__ import annotations

import importlib.util
import ipaddress
from urllib.parse import urlparse

from bench.launcher import LOOPBACK_SITE


def force_loopback_ice() -> None:
    """The same patch the launched targets get, applied in this process."""
    spec = importlib.util.spec_from_file_location("_streambench_loopback", LOOPBACK_SITE / "sitecustomize.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.force_loopback_ice()


def is_loopback_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_only_sdp(sdp: str) -> str:
    """Drop ICE candidates that are not on 127.0.0.1 from a remote description."""
    kept = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:") and line.split()[4] != "127.0.0.1":
            continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"
