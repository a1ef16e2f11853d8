"""A wrong `url` is reported in the user's terms: nothing answers there, or what answers is not a Gradio app."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bench.clients.gradio_config import discover_stream_event
from bench.errors import ProtocolError, TargetError
from bench.launcher import LOOPBACK, free_port
from bench.preflight import check_reachable


class NotFound(BaseHTTPRequestHandler):
    """A web server that is not a Gradio app: 404 for every path."""

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer((LOOPBACK, 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_nothing_listening() -> None:
    url = f"http://{LOOPBACK}:{free_port()}"
    with pytest.raises(TargetError, match=f"^nothing answers at {url} "):
        check_reachable(url)


def test_listening_but_silent() -> None:
    """A socket that accepts connections but never answers HTTP is nothing answering too."""
    with socket.socket() as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen()
        url = f"http://{LOOPBACK}:{silent.getsockname()[1]}"
        with pytest.raises(TargetError, match=f"^nothing answers at {url} \\(no answer within 0.3 s\\)"):
            check_reachable(url, timeout_s=0.3)


def test_any_http_answer_is_reachable(http_server: str) -> None:
    check_reachable(http_server)


def discover(url: str) -> None:
    async def go() -> None:
        async with httpx.AsyncClient(timeout=5.0) as http:
            await discover_stream_event(http, url)

    asyncio.run(go())


def test_discover_names_an_empty_address() -> None:
    url = f"http://{LOOPBACK}:{free_port()}"
    with pytest.raises(TargetError, match=f"^nothing answers at {url}$"):
        discover(url)


def test_discover_names_a_server_that_is_not_gradio(http_server: str) -> None:
    with pytest.raises(ProtocolError, match=rf"^{http_server} is not a Gradio app \(GET /config answered 404\)$"):
        discover(http_server)
