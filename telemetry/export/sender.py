"""The export's I/O: one background thread per process that sends span batches with the official
OpenTelemetry OTLP/HTTP exporter, asking :mod:`telemetry.export.policy` when to retry, when the
breaker is open and what no longer fits in memory, and spilling that to the fallback file
(:mod:`telemetry.export.fallback`).

:meth:`Exporter.submit` is all the recording path does: it queues the rows in memory under a short
lock and wakes the thread; it never does I/O, never blocks on the network and never raises. The
thread is started on first use, so it is born after a gunicorn fork.

Order: the fallback file always holds older spans than memory (it takes the oldest batches on
overflow and on age, and all of memory when the breaker opens), and the thread sends the file
first, so spans reach the receiver in the order they were stored.

Why the official exporter (``opentelemetry-exporter-otlp-proto-http``) and not our own client:
it is the encoder and HTTP client every OpenTelemetry backend is tested against (protobuf, gzip,
headers, TLS options, ``Retry-After``), maintained upstream. It retries transient errors itself
within its timeout; our backoff and breaker take over when it gives up. It reports only success or
failure, so the error's text is taken from the ``requests`` session we give it (its public
``session`` parameter).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

from telemetry.export import policy
from telemetry.export.fallback import Fallback
from telemetry.export.spans import json_line, readable_spans, rows_of_line

log = logging.getLogger(__name__)
IDLE = 1.0  # seconds the thread sleeps when it has nothing due (ages are checked at least this often)
# Answers that say a batch will never be accepted (OTLP/HTTP: 400 is not to be retried; 413 too
# large). 401/403 are not among them: a wrong token is fixed by its owner, and the spans wait.
REFUSED = frozenset({400, 413})


def _recording_session():
    """A ``requests.Session`` (the exporter's public ``session`` parameter) that remembers what its
    last request ended with: the official exporter reports only success or failure."""
    import requests

    class RecordingSession(requests.Session):
        last_error: str | None = None
        last_status: int | None = None

        def request(self, method, url, *args, **kwargs):
            self.last_status = None
            try:
                response = super().request(method, url, *args, **kwargs)
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                raise
            self.last_status = response.status_code
            if response.status_code >= 400:
                self.last_error = f"HTTP {response.status_code} {response.reason}: {response.text[:200]}"
            return response

    return RecordingSession()


def make_otlp_exporter(endpoint: str, headers: dict, timeout: float, compression: str):
    """The official OTLP/HTTP protobuf span exporter, configured from our settings only (not from
    ``OTEL_EXPORTER_OTLP_*``, so one configuration says where the product's spans go), and the
    session it sends with (its ``last_error``)."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    session = _recording_session()
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=dict(headers), timeout=timeout,
                                compression=Compression(compression), session=session)
    return exporter, session


class Exporter:
    """One process's export: :meth:`submit` from the recording side, :meth:`step` in the thread
    (tests call it themselves with ``thread=False`` and a fake clock), :meth:`figures` for health."""

    def __init__(self, send: Callable[[list], tuple[bool, str | None, int | None]], fallback: Fallback, *,
                 pending: policy.Pending, backoff: policy.Backoff, breaker: policy.Breaker,
                 secrets: tuple[str, ...] = (), clock: Callable[[], float] = time.time, endpoint: str = "",
                 thread: bool = True):
        self._send = send  # ReadableSpans -> (exported?, the error if not, the HTTP status)
        self.fallback, self.pending, self.backoff, self.breaker = fallback, pending, backoff, breaker
        self.secrets, self.clock, self.endpoint = secrets, clock, endpoint
        self.blackout: Callable[[], float | None] = lambda: None  # until when a simulated failure lasts
        self.on_step: Callable[[policy.Figures], None] | None = None  # /metrics (telemetry.export.metrics)
        self._lock = threading.Lock()  # the memory buffer (submit vs the thread), held briefly
        self._io = threading.Lock()  # the fallback file and the exporter (the thread vs close at exit)
        self._spill: list[list[tuple]] = []
        self._wake = threading.Event()
        self._pid: int | None = None if thread else os.getpid()  # no thread: the caller steps it (tests)
        if thread:  # registered now, so it runs after the span writer's last flush (atexit is LIFO)
            atexit.register(self.close)
        self._retry_at = 0.0
        self.exported = self.retried = self.dropped = 0
        self.last_success = self.last_failure = self.last_drop = None
        self.last_error: str | None = None
        self._failed_before = False

    # --- the recording side: memory only ---

    def submit(self, rows) -> None:
        """Queue stored span rows for export; never blocks, never raises."""
        try:
            if not rows:
                return
            with self._lock:
                self._spill.extend(self.pending.add(list(rows), self.clock()))
            if self._pid != os.getpid():
                self._start()
            self._wake.set()
        except Exception:  # noqa: BLE001 - exporting must never fail what it exports
            log.exception("export: could not queue %d spans", len(rows))

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            thread = threading.Thread(target=self._run, name="aiops-otlp-export", daemon=True)
            thread.start()

    def start(self) -> None:
        if self._pid != os.getpid():
            self._start()

    def close(self, wait: float = 2.0) -> None:
        """At exit: what memory still holds goes to the fallback file, for the next process to send
        (it adopts this one's folder). Waits at most ``wait`` seconds for a send in progress."""
        with self._lock:
            if not self._spill and not self.pending.spans:
                return  # nothing to keep (and no folder made by a process that never exported)
        if not self._io.acquire(timeout=wait):
            log.warning("export: exiting during a send; %d spans in memory are lost", self.pending.spans)
            return
        try:
            self.fallback.open()
            with self._lock:
                batches, self._spill = self._spill + self.pending.take_all(), []
            self._write(batches)
        finally:
            self._io.release()

    # --- the sender thread ---

    def _run(self) -> None:
        while True:
            try:
                wait = self.step()
                if self.on_step is not None:
                    self.on_step(self.figures())
            except Exception:  # noqa: BLE001 - the sender must outlive any bug in one step
                log.exception("export: sender step failed")
                wait = IDLE
            self._wake.wait(wait)
            self._wake.clear()

    def step(self) -> float:
        """Spill, then send at most one batch if one is due; returns seconds until the next step."""
        with self._io:
            return self._step()

    def _step(self) -> float:
        now = self.clock()
        self.fallback.open()
        with self._lock:
            spill, self._spill = self._spill, []
            spill += self.pending.expired(now)
            if not self.breaker.allows(now):
                spill += self.pending.take_all()
        self._write(spill)
        if not self.breaker.allows(now):
            return max(min(self.breaker.reopens_at() - now, IDLE), 0.0)
        if now < self._retry_at:
            return min(self._retry_at - now, IDLE)
        line = self.fallback.peek() if self.fallback else None
        if line is not None:
            try:
                rows = rows_of_line(line)
            except Exception as exc:  # noqa: BLE001 - a damaged line is skipped, not retried forever
                log.warning("export: unreadable line in the fallback file skipped: %r", exc)
                self.fallback.done()
                self.dropped += 1
                self.last_drop = now
                return 0.0
            self._attempt(rows, self.fallback.done, now)
            return 0.0
        with self._lock:
            batch = self.pending.peek()
        if batch is None:
            return IDLE
        try:
            self._attempt(batch, self._memory_done, now)
        finally:
            with self._lock:
                self.pending.release()  # a no-op after done(); after a failure the batch may spill again
        return 0.0

    def _memory_done(self) -> None:
        with self._lock:
            self.pending.done()

    def _write(self, batches: list[list[tuple]]) -> None:
        for batch in policy.joined(batches, self.pending.batch_size):
            try:
                dropped = self.fallback.append(json_line(batch), len(batch))
            except Exception as exc:  # noqa: BLE001 - a full disk drops (and counts), never raises
                log.warning("export: fallback file not writable, %d spans dropped: %r", len(batch), exc)
                dropped = len(batch)
            if dropped:
                self.dropped += dropped
                self.last_drop = self.clock()

    def _attempt(self, rows: list[tuple], done: Callable[[], None], now: float) -> None:
        if self._failed_before:
            self.retried += 1
        ok, error, refused = self._try(rows, now)
        if refused:  # the endpoint will never take this batch (400, 413): retrying would block the rest
            done()
            self.dropped += len(rows)
            self.last_drop = self.last_failure = self.clock()
            self.last_error = policy.scrub(error, self.secrets)
            log.warning("export: %d spans refused by the endpoint, dropped: %s", len(rows), self.last_error)
            return
        if ok:
            done()
            self.exported += len(rows)
            self.last_success = self.clock()
            self.breaker.success()
            self._failed_before, self._retry_at = False, 0.0
            return
        self._failed_before = True
        self.last_failure = self.clock()
        self.last_error = policy.scrub(error, self.secrets)
        if self.breaker.failure(self.last_failure):
            log.warning("export: circuit breaker open for %gs after %d failures: %s", self.breaker.open_for,
                        self.breaker.failures, self.last_error)
            self._retry_at = self.breaker.reopens_at() or 0.0  # the breaker says when to try again
        else:
            self._retry_at = self.last_failure + self.backoff.delay(self.breaker.failures)

    def _try(self, rows: list[tuple], now: float) -> tuple[bool, str, bool]:
        """(exported, the error, whether the endpoint refused the batch for good)."""
        until = self.blackout()
        if until is not None and until > now:
            return False, "simulated collector failure (POST /simulate/collector-failure)", False
        try:
            ok, error, status = self._send(readable_spans(rows))
        except Exception as exc:  # noqa: BLE001 - any exporter failure is a failed attempt
            return False, f"{type(exc).__name__}: {exc}", False
        return ok, error or f"export to {self.endpoint} failed", not ok and status in REFUSED

    # --- what the health route and /metrics read ---

    def figures(self) -> policy.Figures:
        now = self.clock()
        with self._lock:
            queued = self.pending.spans + sum(map(len, self._spill))
        return policy.Figures(
            queued=queued, exported=self.exported, retried=self.retried, dropped=self.dropped,
            fallback_bytes=self.fallback.pending_bytes, breaker_state=self.breaker.state(now),
            breaker_trips=self.breaker.trips, consecutive_failures=self.breaker.failures,
            last_success=self.last_success, last_failure=self.last_failure, last_drop=self.last_drop,
            last_error=self.last_error, capacity=self.pending.max_spans)
