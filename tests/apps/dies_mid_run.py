"""The bare aiortc echo, killed outright 3 s after its first offer: a target that crashes mid-run."""

import os
import signal
import threading

import uvicorn

from targets.aiortc_echo import build_app

app = build_app()


@app.middleware("http")
async def die_later(request, call_next):
    if request.url.path == "/webrtc/offer":
        threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGKILL)).start()
    return await call_next(request)


uvicorn.run(app, host="127.0.0.1", port=int(os.environ["GRADIO_SERVER_PORT"]), log_level="warning")
