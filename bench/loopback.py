"""Keep the harness's own WebRTC traffic on 127.0.0.1 (docs/PROTOCOLS.md, "Loopback ICE").

The aioice patch itself lives in `loopback_site/sitecustomize.py` (which the
launcher puts on every target's PYTHONPATH and which may import nothing from
streambench); this module loads that file by path so there is one copy of it.
"""

from __future__ import annotations

import importlib.util
import ipaddress
from functools import cache
from pathlib import Path
from types import ModuleType
from urllib.parse import urlparse

SITECUSTOMIZE = Path(__file__).resolve().parent / "loopback_site" / "sitecustomize.py"
LOOPBACK = "127.0.0.1"


@cache
def loopback_site() -> ModuleType:
    """The launcher's sitecustomize, loaded by path: one copy of its aioice patch and import hook."""
    spec = importlib.util.spec_from_file_location("_streambench_loopback_site", SITECUSTOMIZE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def force_loopback_ice() -> None:
    """Make aioice gather 127.0.0.1 only in this process (the patch the launched targets get)."""
    import aioice.ice

    loopback_site().patch_aioice(aioice.ice)


def is_loopback_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_only_sdp(sdp: str) -> str:
    """Drop the `a=candidate` lines whose address is not 127.0.0.1 from a session description."""
    kept = [
        line
        for line in sdp.splitlines()
        if not (line.startswith("a=candidate:") and (line.split()[4:5] or [""])[0] != LOOPBACK)
    ]
    return "\r\n".join(kept) + "\r\n"
