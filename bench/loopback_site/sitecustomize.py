"""Injected by streambench into every target it starts: keep WebRTC ICE on 127.0.0.1.

aioice gathers every interface's address except 127.0.0.1, so on a machine with
another interface the media would leave loopback. With STREAMBENCH_LOOPBACK_ICE=1
it gathers 127.0.0.1 only. Imports nothing from streambench: it runs inside the
user's interpreter. (Python loads only the first sitecustomize on the path, so an
app with its own sitecustomize loses this one; measure such an app by `url`.)
"""

import os


def force_loopback_ice() -> None:
    try:
        from aioice import ice
    except ImportError:
        return

    def loopback_addresses(use_ipv4: bool = True, use_ipv6: bool = False) -> list:
        return ["127.0.0.1"] if use_ipv4 else []

    ice.get_host_addresses = loopback_addresses


if os.environ.get("STREAMBENCH_LOOPBACK_ICE") == "1":
    force_loopback_ice()
