"""The product's own Prometheus metrics (``GET /metrics``), right under several gunicorn workers.

Every gunicorn worker is a separate process with its own span buffer, so a
per-process registry would report only the share of the worker that happens
to answer the scrape. This module uses ``prometheus_client``'s multiprocess
mode instead: each process writes its values to memory-mapped files in one
shared directory, and a scrape (whichever worker answers it) sums every
process's files, including those of workers that have exited, so counters
never go backwards when gunicorn recycles a worker.

Why multiprocess mode rather than counters in the database: it keeps counting
when the database is the thing that is failing (store errors are most
interesting then), costs a memory write instead of a transaction, and gives
each server instance its own totals, which is what Prometheus expects when it
scrapes several instances and sums them.

The directory:

- ``PROMETHEUS_MULTIPROC_DIR`` when the operator sets it (wipe it between runs,
  as the library asks; the shipped ``gunicorn.conf.py`` does that at start);
- otherwise ``gunicorn.conf.py`` creates a fresh temporary one in the master
  before the fork (and removes it on exit), so every worker of one server
  shares it and no two servers do;
- otherwise (gunicorn started with another config) the workers agree on one
  named after their master's pid and start time; a single process (``python
  app.py``, ``flask``, the tests) takes a private temporary directory removed
  at exit.

A directory this module chose is exported with ``AIOPS_METRICS_DIR_OWNER``
(the pid of the process tree it belongs to), so a server started *from* such
a process (the test suite starting gunicorn) does not inherit its counters.

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

import atexit
import functools
import glob
import logging
import os
import shutil
import tempfile
import threading
from collections import Counter as Tally
from collections.abc import Callable, MutableMapping, Sequence
from operator import itemgetter
from typing import TypeVar

from telemetry.columns import SPAN_FIELDS

log = logging.getLogger(__name__)
T = TypeVar("T")

DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
OWNER_ENV = "AIOPS_METRICS_DIR_OWNER"
STORE_SOURCES = ("recorder", "otlp", "otlp_logs")
LOG_BATCH_OUTCOMES = ("accepted", "rejected", "failed")
_service_of = itemgetter(SPAN_FIELDS.index("service"))


# --- choosing the shared directory (plain functions of their arguments) ---

def owned_dir(environ: MutableMapping[str, str], tree_pid: int) -> str | None:
    """The directory in ``environ`` if it applies to the process tree of ``tree_pid``.

    Set by an operator (no owner): it applies. Chosen by aiops for another
    process tree (inherited by a server that process started): it does not.
    """
    path = environ.get(DIR_ENV)
    if not path:
        return None
    owner = environ.get(OWNER_ENV)
    return path if owner is None or owner == str(tree_pid) else None


def _export(environ: MutableMapping[str, str], path: str, tree_pid: int) -> str:
    environ[DIR_ENV] = path
    environ[OWNER_ENV] = str(tree_pid)
    return path


def prepare_master(environ: MutableMapping[str, str], pid: int) -> str:
    """In the gunicorn master before the fork: an empty directory for this server's workers."""
    path = owned_dir(environ, pid)
    if path is None:
        return _export(environ, tempfile.mkdtemp(prefix=f"aiops-metrics-gunicorn-{pid}-"), pid)
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):  # a previous run's values ...
        if not _alive(_file_pid(stale)):  # ... not those of a live process (the worker shares it)
            os.remove(stale)
    return path


def _file_pid(path: str) -> int | None:
    """``counter_1234.db`` -> 1234 (prometheus_client names each process's files so)."""
    stem = os.path.basename(path).rsplit(".", 1)[0]
    tail = stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _alive(pid: int | None) -> bool:
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_master(environ: MutableMapping[str, str], pid: int) -> None:
    """On the master's exit: remove the directory if :func:`prepare_master` created it."""
    if environ.get(OWNER_ENV) == str(pid) and environ.get(DIR_ENV):
        shutil.rmtree(environ[DIR_ENV], ignore_errors=True)


def _start_ticks(pid: int) -> str:
    """A process's start time (clock ticks since boot, Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"


def choose_dir(environ: MutableMapping[str, str]) -> str:
    """This process's metrics directory: exported in ``environ`` (``prometheus_client`` reads it there)."""
    master = os.getppid() if environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/") else None
    tree = master if master is not None else os.getpid()
    path = owned_dir(environ, tree)
    if path is not None:
        os.makedirs(path, exist_ok=True)
        return path
    if master is not None:
        # gunicorn without our gunicorn.conf.py: every worker derives the same name.
        base = os.path.join(tempfile.gettempdir(), f"aiops-metrics-{os.getuid()}")
        path = os.path.join(base, f"gunicorn-{master}-{_start_ticks(master)}")
        os.makedirs(path, mode=0o700, exist_ok=True)
    else:
        path = tempfile.mkdtemp(prefix=f"aiops-metrics-{tree}-")
        atexit.register(shutil.rmtree, path, True)
    return _export(environ, path, tree)


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
        for source in STORE_SOURCES:  # export zeros, so rate() works from the first scrape
            self.store_errors.labels(source)
        for outcome in LOG_BATCH_OUTCOMES:
            self.log_batches.labels(outcome)


_lock = threading.Lock()
_current: _Metrics | None = None


def metrics() -> _Metrics:
    """This process's metric objects (choosing the directory on first use)."""
    global _current
    current = _current
    if current is not None and current.pid == os.getpid():
        return current
    with _lock:
        if _current is None or _current.pid != os.getpid():
            _current = _Metrics(choose_dir(os.environ))
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


def render(accept: str | None, collectors: Sequence = ()) -> tuple[bytes, str]:
    """The exposition of every process's values (Prometheus text, or OpenMetrics if asked for), and
    of ``collectors`` that read their figures at scrape time (from the store, say)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=metrics().path)
    for collector in collectors:
        registry.register(collector)
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
