"""A CPU hog for the demo: busy threads in this process that slow every endpoint it serves.

Python's GIL makes the point: a thread spinning in bytecode holds the
interpreter, so every request thread of the process waits for it each time it
comes back from I/O, and the spinning takes a core besides. That is how a CPU
hog in a pod shows: the self time of every endpoint of the service grows.

The fault is stored in the database (so every gunicorn worker and instance
sees it); each process runs its own threads. :meth:`CpuHog.refresh` matches
them to the stored fault, at most once per ``check_every`` seconds on the
request path, and a watcher thread keeps checking while the hog runs, so a
``/simulate/clear`` served by another worker stops this one's threads too,
even when this one gets no requests. No Flask here: the caller hands over
``read``, which returns the stored ``(threads, until)``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Reader = Callable[[], tuple[int, float | None]]


def _burn(stop: threading.Event, until: float | None) -> None:
    """Spin in bytecode (holding the GIL between switches) until stopped or ``until`` passes."""
    while not stop.is_set() and (until is None or time.time() < until):
        for _ in range(10_000):
            pass


class CpuHog:
    """This process's busy threads, started and stopped to match the stored fault."""

    def __init__(self, check_every: float = 1.0):
        self.check_every = check_every
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._state: tuple[int, float | None] = (0, None)

    def running(self) -> int:
        """How many busy threads of this process are alive."""
        return sum(t.is_alive() for t in self._threads)

    def refresh(self, read: Reader, force: bool = False, _watcher: threading.Event | None = None) -> None:
        """Match the threads to ``read()``; without ``force`` at most once per ``check_every``."""
        now = time.monotonic()
        if not force and now - self._checked < self.check_every:
            return
        self._checked = now
        try:
            threads, until = read()
        except Exception:  # noqa: BLE001 - the database went away: never burn on unchecked
            log.exception("cpu hog: cannot read the fault; stopping")
            threads, until = 0, None
        self.apply(threads, until, read, _watcher)

    def apply(self, threads: int, until: float | None, read: Reader | None = None,
              _watcher: threading.Event | None = None) -> None:
        """Run exactly ``threads`` busy threads until ``until`` (epoch s; None: until told).

        With ``read``, a watcher thread calls :meth:`refresh` every
        ``check_every`` seconds while the threads run.
        """
        with self._lock:
            if _watcher is not None and _watcher.is_set():
                return  # a watcher whose hog was stopped meanwhile must not start a new one
            if until is not None and until <= time.time():
                threads, until = 0, None
            if (threads, until) == self._state and self.running() == threads:
                return
            self._halt()
            self._state = (threads, until)
            if threads <= 0:
                return
            self._stop = stop = threading.Event()
            self._threads = [threading.Thread(target=_burn, args=(stop, until), name=f"cpu-hog-{i}",
                                              daemon=True) for i in range(threads)]
            for t in self._threads:
                t.start()
            if read is not None:
                threading.Thread(target=self._watch, args=(stop, read), name="cpu-hog-watch",
                                 daemon=True).start()
            log.info("cpu hog: %d busy thread(s) started in pid %d", threads, os.getpid())

    def stop(self) -> None:
        self.apply(0, None)

    def _halt(self) -> None:
        """Stop the busy threads and wait for them (each checks the event every fraction of a millisecond)."""
        self._stop.set()
        stopped = self._threads
        for t in stopped:
            t.join()
        if stopped:
            log.info("cpu hog: %d busy thread(s) stopped in pid %d", len(stopped), os.getpid())
        self._threads = []

    def _watch(self, stop: threading.Event, read: Reader) -> None:
        while not stop.wait(self.check_every):
            self.refresh(read, force=True, _watcher=stop)


hog = CpuHog()  # one per process: gunicorn workers fork before any request starts it
