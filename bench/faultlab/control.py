"""The lab's control channel: one JSON object per line over a plain TCP socket.

Faults that belong to a service (an exception, a slow code path, a CPU hog, a
wrong answer) and the sidecar's network faults are switched through this
channel, on a port of their own, so that the product under test sees only the
real traffic: nothing here is traced or goes through the proxies.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Callable

MAX_LINE = 64 * 1024


def ask(port: int, message: dict, timeout: float = 5.0) -> dict:
    """Send ``message`` to the control port on loopback and return its one-line answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(json.dumps(message).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_LINE:
                raise ValueError(f"control answer on port {port} is too long")
    if not data:
        raise ConnectionError(f"control port {port} closed without an answer")
    return json.loads(data)


def decode(line: bytes) -> dict:
    """A request line as a dict, or ValueError (bounded, so a stray client cannot eat memory)."""
    if len(line) > MAX_LINE:
        raise ValueError("control line too long")
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("control message must be a JSON object")
    return message


def answer(handle: Callable[[dict], dict], line: bytes) -> bytes:
    try:
        reply = handle(decode(line))
    except (ValueError, KeyError, TypeError) as exc:
        reply = {"ok": False, "error": str(exc)}
    return json.dumps(reply).encode() + b"\n"


def serve_in_thread(port: int, handle: Callable[[dict], dict]) -> socketserver.ThreadingTCPServer:
    """A threaded control server on ``127.0.0.1:port`` calling ``handle(message) -> reply``."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline(MAX_LINE + 1)
            if line:
                self.wfile.write(answer(handle, line))

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
    return server
