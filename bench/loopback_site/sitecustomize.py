"""Injected by streambench (via PYTHONPATH) into every target it starts: keep WebRTC ICE on 127.0.0.1.

aioice's `get_host_addresses` lists every interface's address EXCEPT 127.0.0.1, so
on a machine with another interface the media would leave loopback. With
STREAMBENCH_LOOPBACK_ICE=1 (the launcher sets it) ICE gathers 127.0.0.1 only.
aioice looks the function up in its module globals at gathering time
(`Connection.gather_candidates`), so replacing `aioice.ice.get_host_addresses`
is enough. The patch is applied when the app first imports `aioice.ice` (an app
without WebRTC pays nothing) and is a no-op where aioice is not installed.

This file runs inside the user's interpreter: standard library only, nothing
from streambench. `bench.loopback` loads it by path to share `patch_aioice`.

Python imports only the first `sitecustomize` on sys.path, and ours comes first.
Best effort, the next `sitecustomize.py` found later on sys.path (a
virtualenv's or the app's own) is then executed too. Limitations: a
`sitecustomize` package or bytecode-only module is not chained, and the chained
one runs under another module name, so `import sitecustomize` gives this one.
"""

import importlib.machinery
import importlib.util
import os
import sys

LOOPBACK = "127.0.0.1"


def loopback_host_addresses(use_ipv4: bool = True, use_ipv6: bool = False) -> list:
    """Replacement for `aioice.ice.get_host_addresses`: the IPv4 loopback address only."""
    return [LOOPBACK] if use_ipv4 else []


def patch_aioice(ice_module) -> None:
    ice_module.get_host_addresses = loopback_host_addresses


class PatchAioiceOnImport:
    """Meta-path finder that patches `aioice.ice` right after its first import."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "aioice.ice":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module) -> None:
            exec_module(module)
            patch_aioice(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def install() -> None:
    """Patch aioice now if it is already imported, else as soon as it is."""
    if "aioice.ice" in sys.modules:
        patch_aioice(sys.modules["aioice.ice"])
    elif PatchAioiceOnImport not in sys.meta_path:
        sys.meta_path.insert(0, PatchAioiceOnImport)


def _chain_next_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    entries = [os.path.abspath(p or os.curdir) for p in sys.path]
    start = entries.index(here) + 1 if here in entries else 0
    for entry in entries[start:]:
        candidate = os.path.join(entry, "sitecustomize.py")
        if entry != here and os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_chained_sitecustomize", candidate)
            if spec is None or spec.loader is None:
                return
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # site.py would only have warned, too
                print(f"Error in sitecustomize {candidate}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return


if __name__ == "sitecustomize":
    if os.environ.get("STREAMBENCH_LOOPBACK_ICE") == "1":
        install()
    _chain_next_sitecustomize()
