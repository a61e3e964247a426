"""The product's own Prometheus metrics (``GET /metrics``), right under several gunicorn workers.

Every gunicorn worker is a separate process with its own span buffer, and the
detection cycles run in yet another (``flask aiops worker``), so a per-process
registry would report only the share of the process that happens to answer
the scrape. This module uses ``prometheus_client``'s multiprocess mode
instead: each process writes its values to memory-mapped files in one shared
directory (:mod:`telemetry.metrics_dir` chooses it: every process of one
installation derives the same one, with no setting), and a scrape (whichever
worker answers it) sums every process's files, including those of workers
that have exited, so counters never go backwards when gunicorn recycles a
worker.

Why multiprocess mode rather than counters in the database: it keeps counting
when the database is the thing that is failing (store errors are most
interesting then), costs a memory write instead of a transaction, and gives
each server instance its own totals, which is what Prometheus expects when it
scrapes several instances and sums them. Figures that *are* the store's state
(open incidents, the last cycle, the outbox) are read from it at scrape time
instead, by collectors the product registers (:func:`add_collector`), so every
worker and every instance agrees on them; a collector that fails is skipped
and counted (``aiops_scrape_errors_total{collector}``), never a 500.

``prometheus_client`` decides between in-memory and file-backed values when it
is first imported, from the environment. Nothing here reads the environment at
import time: the directory is chosen, and the metric objects created, on first
use in the process that records (after the fork). If the library was imported
before that, its value class is switched to the multiprocess one then.

Counting stays off the request path: the lean recorder only appends to a
deque; the span writer reports each flush here (one increment per counter per
batch). The hooks never raise: a metrics failure is logged once and ignored.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import TypeVar

from telemetry import metrics_dir
from telemetry.columns import SPAN_FIELDS

log = logging.getLogger(__name__)
T = TypeVar("T")

STORE_SOURCES = ("recorder", "otlp", "otlp_logs")
LOG_BATCH_OUTCOMES = ("accepted", "rejected", "failed")
_service_of = itemgetter(SPAN_FIELDS.index("service"))


# --- the metric objects, created once per process on first use ---

class _Metrics:
    def __init__(self, path: str):
        from prometheus_client import Counter, Gauge, values

        if values.ValueClass is values.MutexValue:
            # Imported before the directory was chosen: use file-backed values from now on.
            values.ValueClass = values.MultiProcessValue()
        self.path = path
        self.pid = os.getpid()
        self.recorded = Counter("aiops_spans_recorded", "Spans recorded from requests to this server, "
                                "by service (the product's own routes are 'aiops')", ["service"],
                                registry=None)
        self.written = Counter("aiops_spans_written", "Recorded spans written to the span store",
                               registry=None)
        self.dropped = Counter("aiops_spans_dropped", "Recorded spans dropped because a worker's span "
                               "buffer was full (AIOPS_BUFFER_MAX)", registry=None)
        self.pending = Gauge("aiops_spans_pending", "Recorded spans waiting in the workers' buffers "
                             "(as of each worker's last flush)", registry=None, multiprocess_mode="livesum")
        self.ingested = Counter("aiops_spans_ingested", "Spans stored from OTLP/HTTP (POST /v1/traces)",
                                registry=None)
        self.rejected = Counter("aiops_spans_rejected", "Invalid OTLP spans dropped (bad ids or times)",
                                registry=None)
        self.logs_ingested = Counter("aiops_logs_ingested", "Log records stored from OTLP/HTTP "
                                     "(POST /v1/logs)", registry=None)
        self.logs_rejected = Counter("aiops_logs_rejected", "Invalid OTLP log records dropped (bad ids or "
                                     "times, the product's own service)", registry=None)
        self.log_batches = Counter("aiops_log_batches", "OTLP/HTTP log batches (POST /v1/logs) decoded, "
                                   "by outcome: accepted (stored, maybe partly), rejected (every record "
                                   "invalid: 400), failed (the store failed: 503)", ["outcome"],
                                   registry=None)
        self.store_errors = Counter("aiops_store_errors", "Failed writes to the span and log stores: "
                                    "recorder batches (retried), OTLP span and log batches (answered 503)",
                                    ["source"], registry=None)
        self.scrape_errors = Counter("aiops_scrape_errors", "Store reads of GET /metrics that failed, by "
                                     "collector (its gauges were left out of that scrape)", ["collector"],
                                     registry=None)
        for source in STORE_SOURCES:  # export zeros, so rate() works from the first scrape
            self.store_errors.labels(source)
        for outcome in LOG_BATCH_OUTCOMES:
            self.log_batches.labels(outcome)


_lock = threading.Lock()
_current: _Metrics | None = None
_key: str | None = None  # metrics_dir.store_key of the app this process serves (set by share_with)


def share_with(instance_path: str, database_url: str) -> None:
    """Name the installation this process belongs to (``telemetry.init_app``): every process of
    it (web workers, the worker, the demo) then counts into the same directory. The first use of
    the metrics fixes the directory for the process's life."""
    global _key
    _key = metrics_dir.store_key(instance_path, database_url)


def metrics() -> _Metrics:
    """This process's metric objects (choosing the directory on first use)."""
    global _current
    current = _current
    if current is not None and current.pid == os.getpid():
        return current
    with _lock:
        if _current is None or _current.pid != os.getpid():
            _current = _Metrics(metrics_dir.choose_dir(os.environ, _key))
        return _current


def per_process(build: Callable[[], T]) -> Callable[[], T]:
    """Metric objects another package defines (``build`` makes them with ``registry=None``),
    made once per process after the shared directory is chosen, like this module's own."""
    made: dict[int, T] = {}
    lock = threading.Lock()

    def get() -> T:
        pid = os.getpid()
        if pid not in made:
            with lock:
                if pid not in made:
                    metrics()  # chooses the directory, switches the value class
                    made.clear()
                    made[pid] = build()
        return made[pid]

    return get


def never_raise(fn: Callable) -> Callable:
    """Metrics must never break what they measure: a failing hook is logged once, then ignored."""
    return _never_raise(fn)


def _never_raise(fn: Callable) -> Callable:
    failed = []

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 - metrics must never break what they measure
            if not failed:
                failed.append(True)
                log.exception("self-metrics: %s failed (logged once)", fn.__name__)

    return wrapper


# --- hooks ---

@_never_raise
def buffer_flushed(*, fresh: Sequence[tuple], written: int, dropped: int, failed: bool, pending: int) -> None:
    """The span writer's report of one flush: spans queued since the last one, and the outcome."""
    m = metrics()
    for service, count in Tally(map(_service_of, fresh)).items():
        m.recorded.labels(service).inc(count)
    if written:
        m.written.inc(written)
    if dropped:
        m.dropped.inc(dropped)
    if failed:
        m.store_errors.labels("recorder").inc()
    m.pending.set(pending)


@_never_raise
def otlp_batch(*, stored: int, rejected: int, failed: bool = False, signal: str = "spans") -> None:
    """One ``POST /v1/traces`` (``signal`` spans) or ``POST /v1/logs`` (logs) batch: records stored
    (0 when the store failed) and rejected; for logs, the batch's outcome too."""
    m = metrics()
    if signal == "metric points":  # counted by the batches' answers only, for now (no families of their own)
        if failed:
            m.store_errors.labels("otlp_metrics").inc()
        return
    logs = signal == "logs"
    if stored:
        (m.logs_ingested if logs else m.ingested).inc(stored)
    if rejected:
        (m.logs_rejected if logs else m.rejected).inc(rejected)
    if failed:
        m.store_errors.labels("otlp_logs" if logs else "otlp").inc()
    if logs:
        outcome = "failed" if failed else "rejected" if rejected and not stored else "accepted"
        m.log_batches.labels(outcome).inc()


# --- GET /metrics ---

COLLECTORS = "aiops_metrics_collectors"  # app.extensions: {name: collect} (add_collector)
Collect = Callable[[], Iterable]


def add_collector(app, name: str, collect: Collect) -> None:
    """Add figures read at scrape time to ``GET /metrics``: ``collect()`` runs inside the scrape's
    request (the app context and its database session) and returns metric families
    (``prometheus_client.core.GaugeMetricFamily``...). Keep it to one cheap aggregate query. One
    that raises is left out of that scrape, logged, and counted in
    ``aiops_scrape_errors_total{collector=name}``; the others and the counters are still served."""
    app.extensions.setdefault(COLLECTORS, {})[name] = collect


class _Guarded:
    """A collector that never fails the scrape (``prometheus_client`` calls ``collect``)."""

    def __init__(self, name: str, collect: Collect):
        self.name, self._collect = name, collect

    def collect(self) -> list:
        counted = metrics().scrape_errors.labels(self.name)  # a zero from the first scrape
        try:
            return list(self._collect())
        except Exception as exc:  # noqa: BLE001 - a failing store read must not fail the scrape
            log.warning("GET /metrics: collector %r failed, its figures are left out: %r", self.name, exc)
            _rollback()
            counted.inc()
            return []


def _rollback() -> None:
    """End the failed transaction, so the next collector of the scrape starts clean."""
    try:
        from telemetry.db import db

        db.session.rollback()
    except Exception:  # noqa: BLE001 - the store is failing already; nothing more to do
        log.debug("rollback after a failed collector failed too", exc_info=True)


def render(accept: str | None, collectors: dict[str, Collect] | None = None) -> tuple[bytes, str]:
    """The exposition of every process's values and of ``collectors`` (:func:`add_collector`):
    Prometheus text, or OpenMetrics if asked for."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    for name, collect in (collectors or {}).items():  # first: their error counts are read after
        registry.register(_Guarded(name, collect))
    MultiProcessCollector(registry, path=metrics().path)
    encoder, content_type = choose_encoder(accept or "")
    for attempt in range(3):
        try:
            return encoder(registry), content_type
        except FileNotFoundError:  # a starting process removed a dead one's file between glob and read
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
