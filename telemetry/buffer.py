"""Batches span tuples off the request path and writes them in one transaction.

A request only appends a tuple to a deque (no lock, no I/O). A daemon thread,
started on first use so it is born after a gunicorn fork, drains the deque
every ``flush_interval`` seconds with one ``executemany``. A failed write is
counted, logged and retried with the next flush; only when the buffer is full
are new spans dropped (and counted), so the request is never slowed or failed.
``on_flush``, if given, hears about every flush (for :mod:`telemetry.selfmetrics`):
the rows queued since the last one and the outcome, so counters move per batch.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

Writer = Callable[[Sequence[tuple]], None]
FlushListener = Callable[..., None]  # keywords: fresh, written, dropped, failed, pending


class SpanBuffer:
    def __init__(self, writer: Writer, flush_interval: float = 0.2, max_size: int = 100_000,
                 on_flush: FlushListener | None = None):
        self._writer = writer
        self._on_flush = on_flush
        self._dropped_reported = 0
        self._interval = flush_interval
        self._max = max_size
        self._queue: deque[tuple] = deque()
        self._retry: list[tuple] = []
        self._lock = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self.recorded = 0
        self.dropped = 0
        self.written = 0
        self.store_errors = 0

    def add(self, row: tuple) -> None:
        """Queue one span; never raises, never blocks."""
        if len(self._queue) + len(self._retry) >= self._max:
            self.dropped += 1
            return
        self._queue.append(row)
        self.recorded += 1
        if self._pid != os.getpid():
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            # After a fork the parent's thread does not exist here: start ours.
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="aiops-span-writer", daemon=True)
            self._thread.start()
            atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write everything queued so far; returns rows written (0 on failure)."""
        with self._lock:
            batch = self._retry
            self._retry = []
            retried = len(batch)
            while self._queue:
                batch.append(self._queue.popleft())
            if not batch:
                return 0
            fresh = batch[retried:] if self._on_flush else ()
            try:
                self._writer(batch)
            except Exception:  # noqa: BLE001 - a store failure must never escape
                self.store_errors += 1
                if self.store_errors == 1 or self.store_errors % 100 == 0:
                    log.exception("span store write failed (%d failures so far)", self.store_errors)
                # Keep the batch for the next flush, within the buffer bound.
                overflow = len(batch) - self._max
                if overflow > 0:
                    self.dropped += overflow
                    batch = batch[overflow:]
                self._retry = batch
                self._report(fresh, 0, True)
                return 0
            self.written += len(batch)
            self._report(fresh, len(batch), False)
            return len(batch)

    def _report(self, fresh: Sequence[tuple], written: int, failed: bool) -> None:
        if self._on_flush is None:
            return
        dropped = self.dropped - self._dropped_reported
        self._dropped_reported += dropped
        try:
            self._on_flush(fresh=fresh, written=written, dropped=dropped, failed=failed,
                           pending=len(self._queue) + len(self._retry))
        except Exception:  # noqa: BLE001 - a listener must not stop the writer
            log.exception("span buffer flush listener failed")

    def stats(self) -> dict[str, int]:
        return {
            "recorded": self.recorded,
            "written": self.written,
            "pending": len(self._queue) + len(self._retry),
            "dropped": self.dropped,
            "store_errors": self.store_errors,
        }
