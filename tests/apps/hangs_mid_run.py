"""The bare aiortc echo, hung 3 s after its first offer: SIGSTOP of its whole process group, a target that freezes.

Its port still accepts connections (the kernel completes them) but nothing is answered, unlike a crash.
"""

import os
import signal
import threading

import uvicorn

from targets.aiortc_echo import build_app

app = build_app()
hang = threading.Timer(3.0, os.killpg, (os.getpgid(0), signal.SIGSTOP))


@app.middleware("http")
async def hang_later(request, call_next):
    if request.url.path == "/webrtc/offer" and hang.ident is None:  # the first session only
        hang.start()
    return await call_next(request)


uvicorn.run(app, host="127.0.0.1", port=int(os.environ["GRADIO_SERVER_PORT"]), log_level="warning")
