"""A real HTTP receiver on loopback for tests of outbound calls (webhooks, PagerDuty, hooks).

It records every request and answers from a script, then with a default::

    with Receiver([500, Reply(429, headers={"Retry-After": "1"}), 202]) as hook:
        post_to(hook.url("/hook"))
        assert [r.status for r in hook.requests] == [500, 429, 202]

Every request gets the next scripted reply (shared by all paths); when the
script runs out, the default reply. Safe to use from several threads.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    """One scripted answer; ``delay`` seconds before answering (to make a caller time out)."""

    status: int = 200
    body: str = ""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it, and what it answered."""

    method: str
    path: str
    headers: dict  # lower-cased names
    body: bytes
    json: object  # the parsed body, or None when it is not JSON
    at: float
    status: int


def _reply(item: Reply | int) -> Reply:
    return item if isinstance(item, Reply) else Reply(int(item))


class Receiver:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, script: Iterable[Reply | int] = (), default: Reply | int = 200):
        self._lock = threading.Lock()
        self._script: list[Reply] = [_reply(item) for item in script]
        self._default = _reply(default)
        self._requests: list[Received] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- scripting and inspection (thread-safe) ---

    def script(self, *replies: Reply | int, default: Reply | int | None = None) -> None:
        """Queue further replies (after any still queued); optionally change the default."""
        with self._lock:
            self._script.extend(_reply(item) for item in replies)
            if default is not None:
                self._default = _reply(default)

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._requests)

    def url(self, path: str = "/") -> str:
        assert self._server is not None, "start the receiver first (use it as a context manager)"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def _next(self) -> Reply:
        with self._lock:
            return self._script.pop(0) if self._script else self._default

    def _record(self, received: Received) -> None:
        with self._lock:
            self._requests.append(received)

    # --- lifecycle ---

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                reply = receiver._next()
                receiver._record(Received(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                    body, parsed, time.time(), reply.status,
                ))
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the caller gave up (timed out) before the answer

            do_POST = do_GET = do_PUT = _handle

            def log_message(self, format, *args):  # noqa: A002 - quiet test output
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="test-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
