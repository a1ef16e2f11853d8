"""Run a user's app script the way its guide starts it, but serving on 127.0.0.1 at the port the launcher chose.

    python -m bench.app_host SCRIPT --port PORT

Guides start servers in ways an environment variable cannot redirect:
`uvicorn.run(app, host="0.0.0.0", port=7860)` (FastRTC mounted on FastAPI),
`demo.launch(server_name="0.0.0.0", server_port=7860)`, or nothing at all (an
`app = FastAPI()` meant for `uvicorn script:app`). So the script runs here as
`__main__` (its directory first on sys.path, as `python script.py` would have
it), after two patches: every `uvicorn.Config` (behind `uvicorn.run`,
`uvicorn.Server` and Gradio's own server) and every `gradio.Blocks.launch`
(`stream.ui.launch()` included) bind 127.0.0.1:PORT whatever the script passed,
and `launch` never opens a share link. If the script returns without starting
a server, the first of its globals that can be served is served: a
FastAPI / Starlette app with uvicorn, else a Gradio Blocks, else a fastrtc
Stream's UI. Nothing to serve exits 3 with one line.

The patches are applied when the script first imports `uvicorn.config` /
`gradio.blocks` (the meta-path hook of `loopback_site/sitecustomize.py`, which
patches aioice that way), not by importing them here first: a FastAPI app would otherwise
pay Gradio's import (seconds, ~150 MB) for nothing, and the patched class is
the one every later `from ... import` sees. What is overridden is logged as a
"streambench: " line (`bench.launcher.injected_notes` reads them back).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import runpy
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.loopback import loopback_site

LOOPBACK = "127.0.0.1"
NOTHING_TO_SERVE = 3


class _Host:
    """What the script asked for and whether it started a server; the patches report here."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.started = False

    def bind(self, what: str, host: Any, port: Any) -> tuple[str, int]:
        """The address to serve on instead of `host`:`port`, noting an override the script would not expect."""
        self.started = True
        if (host, port) != (LOOPBACK, self.port):
            note(f"{what} asked for {host}:{port}, serving on {LOOPBACK}:{self.port}")
        return LOOPBACK, self.port

    def patch_uvicorn_config(self, module: ModuleType) -> None:
        original = module.Config.__init__

        @functools.wraps(original)
        def init(config: Any, *args: Any, **kwargs: Any) -> None:
            original(config, *args, **kwargs)
            config.host, config.port = self.bind("uvicorn", config.host, config.port)
            config.uds = config.fd = None  # a socket file or inherited fd would bypass host and port

        module.Config.__init__ = init

    def patch_gradio_launch(self, module: ModuleType) -> None:
        original = module.Blocks.launch
        signature = inspect.signature(original)

        @functools.wraps(original)
        def launch(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            # None: Gradio would read GRADIO_SERVER_NAME / _PORT, which the launcher sets to ours
            name, port = bound.arguments.get("server_name") or LOOPBACK, bound.arguments.get("server_port") or self.port
            self.bind("gradio launch()", name, port)
            bound.arguments.update(server_name=LOOPBACK, server_port=self.port, share=False)
            return original(*bound.args, **bound.kwargs)

        module.Blocks.launch = launch


def note(text: str) -> None:
    print(f"streambench: {text}", file=sys.stderr, flush=True)


SERVABLE_KINDS = (  # in the order they are looked for: an ASGI app may mount a Blocks or a Stream, not vice versa
    ("starlette.applications", "Starlette"),  # FastAPI included
    ("gradio.blocks", "Blocks"),
    ("fastrtc.stream", "Stream"),
)


def servable(namespace: dict[str, Any]) -> tuple[str, Any, str] | None:
    """The first global to serve, by kind, as (its name, it, its class name)."""
    for module_name, class_name in SERVABLE_KINDS:
        cls = getattr(sys.modules.get(module_name), class_name, None)  # not imported: the script made none
        for name, value in namespace.items():
            if cls is not None and isinstance(value, cls):
                return name, value, class_name
    return None


def serve(name: str, value: Any, kind: str, script: Path, port: int) -> None:
    """Serve what the script only defined, as its guide's command would (`uvicorn script:app`, `launch()`)."""
    note(f"{script.name} started no server: serving its `{name}` ({type(value).__name__})")
    if kind == "Starlette":
        import uvicorn

        uvicorn.run(value, host=LOOPBACK, port=port)
    elif kind == "Blocks":
        value.launch()
    else:
        value.ui.launch()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.app_host", description=__doc__.splitlines()[0])
    parser.add_argument("script", type=Path, help="the app's Python script")
    parser.add_argument("--port", type=int, required=True, help="the 127.0.0.1 port to serve on")
    args = parser.parse_args()
    script = args.script.resolve()
    host = _Host(args.port)
    on_import = loopback_site().PatchOnImport()
    on_import.install("uvicorn.config", host.patch_uvicorn_config)
    on_import.install("gradio.blocks", host.patch_gradio_launch)
    sys.argv = [str(script)]
    sys.path[0] = str(script.parent)
    namespace = runpy.run_path(str(script), run_name="__main__")
    if host.started:
        return
    found = servable(namespace)
    if found is None:
        what = "a FastAPI/Starlette app, a gradio Blocks or a fastrtc Stream"
        print(f"{script}: started no server and defines nothing to serve (looked for {what})", file=sys.stderr)
        raise SystemExit(NOTHING_TO_SERVE)
    serve(*found, script, args.port)


if __name__ == "__main__":
    main()
