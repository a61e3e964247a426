"""The demo's external peer (a card gateway, a warehouse API), run as a process of its own:
``python simulation/gateway.py PARENT_PID`` prints the loopback port it listens on, then answers
until its parent is gone.

A process, not a thread of the shop: a real third-party API does not share the shop's CPU, so a
CPU hog in the shop must not slow it (nor make its callers' CLIENT spans blame it). It answers
any path with a small JSON body, or a 503 when the call carries ``X-Demo-Fail: 503`` (the
``5xx`` mode of ``/simulate/dependency``). It imports nothing of the product.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAIL_HEADER = "X-Demo-Fail"


class Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 65536))
        failing = self.headers.get(FAIL_HEADER) == "503"
        body = json.dumps({"error": "unavailable"} if failing else {"ok": True}).encode()
        self.send_response(503 if failing else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        """Quiet: the stub is a prop, not a service."""


def _orphaned(parent: int) -> None:
    """Exit once the parent process is gone (its pid no longer ours to wait on)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def main() -> None:
    parent = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=_orphaned, args=(parent,), daemon=True).start()
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
