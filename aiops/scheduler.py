"""The in-process APScheduler jobs: detection every interval, and outbox delivery.

Every worker may start one (gunicorn forks several); :func:`aiops.cycle.claim`
makes sure only one of them runs each interval's cycle. The scheduler starts
on a worker's first request (after the fork) or explicitly in ``python app.py``,
never in ``create_app``.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from aiops import delivery
from aiops.cycle import prune_cycles, run_claimed
from telemetry import store
from telemetry.db import db

log = logging.getLogger(__name__)
_lock = threading.Lock()
PRUNE_EVERY = 600.0  # seconds between retention passes in one process


def tick(app: Flask) -> dict | None:
    """The job body: one claimed cycle, then retention now and then."""
    with app.app_context():
        try:
            summary = run_claimed(app.config, force=False)
        except Exception:
            log.exception("detection cycle failed")
            return None
        finally:
            db.session.remove()
        if summary is not None:
            log.info("detection cycle: %d spans, %d anomalies, opened %s",
                     summary["spans"], len(summary["anomalies"]), summary["incidents_opened"])
            _maybe_prune(app)
        return summary


def _maybe_prune(app: Flask) -> None:
    state = app.extensions.setdefault("aiops_prune", {"at": 0.0})
    now = time.time()
    if now - state["at"] < PRUNE_EVERY:
        return
    state["at"] = now
    cutoff = now - app.config["AIOPS_RETENTION_HOURS"] * 3600
    try:
        prune_cycles(cutoff)
        removed = store.prune_spans(db.engine, cutoff)
        if removed:
            log.info("retention: pruned %d spans older than %.1f h", removed,
                     app.config["AIOPS_RETENTION_HOURS"])
    except Exception:
        log.exception("retention pass failed")


def outbound(config) -> bool:
    """Whether this process must deliver the outbox: notifications on and something to send to."""
    return bool(config.get("AIOPS_NOTIFICATIONS", True)) and any(
        delivery.configured(config, channel) for channel in delivery.CHANNELS)


def start(app: Flask) -> BackgroundScheduler | None:
    """Start this process's scheduler once: the detection job (``AIOPS_SCHEDULER``) and the
    outbox delivery job (whenever a channel or hook is configured). A no-op when neither
    is wanted or it already runs in this process."""
    detection, deliver = app.config["AIOPS_SCHEDULER"], outbound(app.config)
    if not (detection or deliver):
        return None
    with _lock:
        running = app.extensions.get("aiops_scheduler")
        if running is not None and running[0] == os.getpid():
            return running[1]
        # APScheduler logs every job run at INFO: with delivery polling each second in every
        # worker that floods the log. Its warnings and errors (misfires, failures) still show.
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
        scheduler = BackgroundScheduler(daemon=True)
        if detection:
            scheduler.add_job(
                tick, "interval", args=[app], seconds=app.config["AIOPS_DETECTION_INTERVAL"],
                id="aiops-detection", max_instances=1, coalesce=True, misfire_grace_time=None,
            )
        if deliver:
            delivery.add_job(scheduler, app)  # claims keep each message to one sender
        scheduler.start()
        app.extensions["aiops_scheduler"] = (os.getpid(), scheduler)
        if detection:  # tests/e2e read this line to know which processes run cycles
            log.info("detection scheduler started in pid %d (every %ss)", os.getpid(),
                     app.config["AIOPS_DETECTION_INTERVAL"])
        if deliver:
            log.info("notification delivery started in pid %d", os.getpid())
        return scheduler
