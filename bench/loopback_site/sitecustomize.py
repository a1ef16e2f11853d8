"""Injected by streambench (via PYTHONPATH) into every target it starts: loopback ICE, an offline VAD.

aioice's `get_host_addresses` lists every interface's address EXCEPT 127.0.0.1, so
on a machine with another interface the media would leave loopback. With
STREAMBENCH_LOOPBACK_ICE=1 (the launcher sets it) ICE gathers 127.0.0.1 only.
aioice looks the function up in its module globals at gathering time
(`Connection.gather_candidates`), so replacing `aioice.ice.get_host_addresses`
is enough. The patch is applied when the app first imports `aioice.ice` (an app
without WebRTC pays nothing) and is a no-op where aioice is not installed.

fastrtc's `ReplyOnPause` gets its VAD from `get_silero_model()`, which downloads
a model from the Hugging Face hub: offline (HF_HUB_OFFLINE=1, as every target
runs) a guide's voice app dies at start. With STREAMBENCH_OFFLINE_VAD=1 that
getter returns streambench's offline silero v5 adapter (`targets.vad`, the model
ships in the package; fastrtc's own wrapper also never hears a pause on the v5
model, BENCHMARKS.md finding 14). It is replaced in `fastrtc.pause_detection.silero`
as soon as that module has run, before fastrtc's `from .silero import
get_silero_model` copies it, and says so once in the app's log when used
(`OFFLINE_VAD_NOTE`, read back by `bench.launcher.injected_notes`).

This file runs inside the user's interpreter: standard library only at import
(the adapter is imported when fastrtc asks for a VAD). `bench.loopback` loads it
by path to share `patch_aioice`.

Python imports only the first `sitecustomize` on sys.path, and ours comes first.
Best effort, the next `sitecustomize.py` found later on sys.path (a
virtualenv's or the app's own) is then executed too. Limitations: a
`sitecustomize` package or bytecode-only module is not chained, and the chained
one runs under another module name, so `import sitecustomize` gives this one.
"""

import functools
import importlib
import importlib.machinery
import importlib.util
import os
import sys

LOOPBACK = "127.0.0.1"
OFFLINE_VAD_NOTE = "streambench: fastrtc's VAD model replaced by the harness's offline silero v5 adapter"


def loopback_host_addresses(use_ipv4: bool = True, use_ipv6: bool = False) -> list:
    """Replacement for `aioice.ice.get_host_addresses`: the IPv4 loopback address only."""
    return [LOOPBACK] if use_ipv4 else []


def patch_aioice(ice_module) -> None:
    ice_module.get_host_addresses = loopback_host_addresses


@functools.cache
def offline_silero_model():
    """Replacement for fastrtc's `get_silero_model`: one warmed-up offline adapter, shared as fastrtc shares its own."""
    model = importlib.import_module("targets.vad").SileroV5VAD()
    model.warmup()
    print(OFFLINE_VAD_NOTE, file=sys.stderr, flush=True)
    return model


def patch_fastrtc_vad(silero_module) -> None:
    silero_module.get_silero_model = offline_silero_model


class PatchOnImport:
    """Meta-path finder that patches a module right after its first import (`bench.app_host` uses it too)."""

    def __init__(self) -> None:
        self.patches = {}

    def install(self, name: str, patch) -> None:
        """Apply `patch` to module `name` now if it is already imported, else as soon as it is."""
        if name in sys.modules:
            patch(sys.modules[name])
            return
        self.patches[name] = patch
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def find_spec(self, name, path=None, target=None):
        patch = self.patches.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module) -> None:
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


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
    _on_import = PatchOnImport()
    if os.environ.get("STREAMBENCH_LOOPBACK_ICE") == "1":
        _on_import.install("aioice.ice", patch_aioice)
    if os.environ.get("STREAMBENCH_OFFLINE_VAD") == "1":
        _on_import.install("fastrtc.pause_detection.silero", patch_fastrtc_vad)
    _chain_next_sitecustomize()
