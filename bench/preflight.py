"""Checks made before a run starts, so a wrong `url` fails in the user's terms, not deep inside a client."""

from __future__ import annotations

import httpx

from bench.errors import TargetError


def check_reachable(url: str, timeout_s: float = 5.0) -> None:
    """Raise TargetError unless something answers HTTP at `url` (any status: a 404 still means a server is there)."""
    try:
        httpx.get(url, timeout=timeout_s)
    except httpx.ConnectError as exc:
        raise TargetError(f"nothing answers at {url} (cannot connect); start the app or correct the url") from exc
    except httpx.TimeoutException as exc:
        raise TargetError(
            f"nothing answers at {url} (no answer within {timeout_s:g} s); start the app or correct the url"
        ) from exc
