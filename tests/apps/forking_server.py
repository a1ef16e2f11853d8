"""A tiny target that spawns a grandchild, then serves GET /health: stopping it must stop both."""

import http.server
import subprocess
import sys

subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
