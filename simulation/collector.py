"""``POST /simulate/collector-failure?seconds=N``: the OTLP export's endpoint fails for N seconds.

Stored as the fault row ``otlp-collector`` (its ``until``), so every worker and instance of the
demo sees it, like the other faults. Each process's export thread asks :func:`blackout_until`
before it sends (read from the store at most once a second) and, while the failure lasts, counts
each attempt as failed without sending: its backoff, breaker and fallback file work as they would
against a dead collector. Cleared by ``POST /simulate/clear`` like any fault.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from flask import Flask

from simulation import faults
from simulation.models import Fault
from telemetry.db import db

log = logging.getLogger(__name__)
COLLECTOR = "otlp-collector"  # the fault row's key (not a demo endpoint)
MAX_COLLECTOR_SECONDS = 86_400.0
CACHE_SECONDS = 1.0


def parse(params: Mapping) -> float:
    faults.check_only(params, "seconds")
    seconds = faults.number(params, "seconds", 0, MAX_COLLECTOR_SECONDS)
    if seconds <= 0:
        raise faults.FaultError(f"'seconds' must be more than 0, not {seconds:g}")
    return seconds


def inject(seconds: float) -> Fault:
    return faults.upsert(COLLECTOR, stopped=True, until=time.time() + seconds)


def blackout_until(app: Flask) -> Callable[[], float | None]:
    """For the export thread: when the injected collector failure ends (None: there is none)."""
    cache = {"at": -CACHE_SECONDS, "until": None}
    lock = threading.Lock()

    def until() -> float | None:
        now = time.monotonic()
        with lock:
            if now - cache["at"] >= CACHE_SECONDS:
                cache["at"] = now
                cache["until"] = _stored(app)
            return cache["until"]

    return until


def _stored(app: Flask) -> float | None:
    try:
        with app.app_context():
            fault = db.session.get(Fault, COLLECTOR)
            return fault.until if fault is not None else None
    except Exception as exc:  # noqa: BLE001 - a store failure means no simulated failure, not a crash
        log.debug("collector failure not readable: %r", exc)
        return None
