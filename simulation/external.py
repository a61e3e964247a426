"""The demo's one external dependency: a loopback stub nothing records, and the faults of the
failure patterns (``/simulate/dependency``, ``/simulate/exhaust``, ``/simulate/invalid``).

Payment and inventory call the stub on every request (a card gateway, a warehouse API), inside
a CLIENT span whose peer is ``gateway``; the stub records no span of its own, so the product
sees it only through its callers, as it would see a third-party API. Each process starts its
own stub, a process of its own on a free loopback port (a real API does not share the shop's CPU),
the first time it needs it (after the fork, under gunicorn); the stub exits with its parent.

The faults raise the errors real code meets: a real refused connection (a port bound but not
listening), a name-resolution error, a 503 from the stub; a real SQLAlchemy pool timeout, a
``MemoryError``, ``OSError(EMFILE)``, ``OSError(ENOSPC)``; a 200 whose body is not JSON. Nothing
is really exhausted.
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import requests

from simulation import gateway

PEER = "gateway"  # the peer name its callers' CLIENT spans carry
CALLERS = {"payment": ("POST", "charge"), "inventory": ("GET", "stock")}  # endpoint -> the call it makes
MODES = ("refused", "dns", "5xx")
RESOURCES = ("pool", "memory", "fds", "disk")
GATEWAY = Path(__file__).with_name("gateway.py")
UNRESOLVABLE = "gateway.invalid"  # RFC 6761: never resolves

_lock = threading.Lock()
_stub: tuple[subprocess.Popen, int] | None = None  # the stub process and its port
_refusing: socket.socket | None = None


def stub_url() -> str:
    """``http://127.0.0.1:<port>`` of this process's stub (:mod:`simulation.gateway`, a process of
    its own), started on first use."""
    global _stub
    with _lock:
        if _stub is None or _stub[0].poll() is not None:
            process = subprocess.Popen([sys.executable, str(GATEWAY), str(os.getpid())],
                                       stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
            _stub = (process, int(process.stdout.readline()))
        return f"http://127.0.0.1:{_stub[1]}"


def refused_url() -> str:
    """A loopback address that refuses connections: a port this process holds bound, never listening."""
    global _refusing
    with _lock:
        if _refusing is None:
            _refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            _refusing.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{_refusing.getsockname()[1]}"


def call(
    session: requests.Session, method: str, path: str, mode: str | None, timeout: float
) -> requests.Response:
    """One call to the gateway, failing as ``mode`` says (None: it works)."""
    headers = {}
    if mode == "refused":
        base = refused_url()
    elif mode == "dns":
        # The resolver's own error, without asking a DNS server (the demo may be offline).
        cause = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        raise requests.ConnectionError(
            f"HTTPConnectionPool(host='{UNRESOLVABLE}', port=80): Max retries exceeded with url: /{path} "
            f"(Caused by NameResolutionError(\"Failed to resolve '{UNRESOLVABLE}' "
            f"([Errno -2] {cause.strerror})\"))"
        ) from cause
    else:
        base = stub_url()
        if mode == "5xx":
            headers[gateway.FAIL_HEADER] = "503"
    return session.request(method, f"{base}/{path}", headers=headers, timeout=timeout)


def exhaust(resource: str) -> None:
    """Raise the error ``resource`` running out gives (without running out of it)."""
    if resource == "pool":
        _pool_timeout()
    if resource == "memory":
        raise MemoryError("cannot allocate memory for the request buffer")
    if resource == "fds":
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
    if resource == "disk":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "receipt.tmp")


def _pool_timeout() -> None:
    """A real SQLAlchemy ``QueuePool`` of one connection, asked for a second: its TimeoutError."""
    from sqlalchemy.pool import QueuePool

    pool = QueuePool(lambda: sqlite3.connect(":memory:"), pool_size=1, max_overflow=0, timeout=0.01)
    held = pool.connect()
    try:
        pool.connect()
    finally:
        held.close()
        pool.dispose()


INVALID_BODY = "<html><body>Service temporarily in maintenance</body></html>"
