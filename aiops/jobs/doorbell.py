"""Wake another process now, instead of making it poll: PostgreSQL NOTIFY, or a local socket for SQLite.

``POST /aiops/analyze`` asks the worker for a cycle and waits for the answer;
both sides block on a :class:`Listener` until the other rings (or a timeout
passes), so neither sleeps in a loop. A ring carries no data that matters:
the request and its answer live in the database (``cycle_requests``), and a
listener always looks there after waking, so a ring that is lost or arrives
early costs at most one timeout, never a wrong answer.

- PostgreSQL: ``LISTEN``/``NOTIFY`` on a dedicated autocommit connection, so
  it works between instances on different hosts.
- SQLite: every process using the file is on this host; each listener binds a
  Unix datagram socket in a directory named after the database file, and a
  ring sends one datagram to each (stale sockets of dead processes are removed).
"""

from __future__ import annotations

import hashlib
import os
import select
import socket
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import Engine, text

ANALYZE = "aiops_analyze"  # the web asks the worker for a cycle
ANSWERED = "aiops_analyzed"  # the worker finished one


def _sqlite_dir(engine: Engine) -> Path:
    """A short per-database directory (socket paths are limited to about 100 bytes)."""
    name = os.path.abspath(engine.url.database or ":memory:")
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"aiops-bell-{os.getuid()}-{digest}"


class Listener:
    """Hears rings on one channel from the moment it is made until it is closed."""

    def __init__(self, engine: Engine, channel: str):
        self.channel = channel
        self._pg = None
        self._sock: socket.socket | None = None
        if engine.dialect.name == "postgresql":
            import psycopg

            url = engine.url.set(drivername="postgresql")
            self._pg = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
            self._pg.execute(f'LISTEN "{channel}"')
        else:
            folder = _sqlite_dir(engine)
            folder.mkdir(mode=0o700, exist_ok=True)
            self._path = folder / f"{channel}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.bind(str(self._path))

    def wait(self, timeout: float) -> bool:
        """Block until a ring or ``timeout`` seconds; True when rung (rings are drained)."""
        if self._pg is not None:
            rung = False
            for _ in self._pg.notifies(timeout=timeout, stop_after=1):
                rung = True
            return rung
        assert self._sock is not None
        ready, _, _ = select.select([self._sock], [], [], max(timeout, 0.0))
        if not ready:
            return False
        self._sock.setblocking(False)
        try:
            while True:
                self._sock.recv(64)
        except BlockingIOError:
            pass
        finally:
            self._sock.setblocking(True)
        return True

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
        if self._sock is not None:
            self._sock.close()
            self._path.unlink(missing_ok=True)

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ring(engine: Engine, channel: str) -> None:
    """Wake every listener of ``channel`` (none listening is fine)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})
        return
    folder = _sqlite_dir(engine)
    if not folder.is_dir():
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        for path in folder.glob(f"{channel}.*"):
            try:
                sock.sendto(b"!", str(path))
            except (ConnectionRefusedError, FileNotFoundError):
                path.unlink(missing_ok=True)  # its process is gone
            except BlockingIOError:
                pass  # its queue is full: it has rings waiting already
