"""The scheduled work, as data, and the process that runs it.

Web workers only serve requests. Detection, trace-query rules, outbox delivery and retention run
in one worker process: ``flask --app app aiops worker`` in production, or a
thread of ``python app.py`` for the demo. Both call :func:`start`, which also
answers ``POST /aiops/analyze`` (:mod:`aiops.jobs.on_demand`). Several workers (or
instances) may run: the database leases keep each cycle and each message to
one of them, so a second worker is a standby, not a duplicate. With ``AIOPS_TEMPO_URL`` set, each
worker also polls that Tempo API for traces (a second worker's polls store nothing twice: span ids
are unique in the store).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from aiops import instruments as selfmetrics
from aiops import outbox
from aiops.jobs import doorbell, on_demand
from aiops.jobs.cycle import prune_cycles, run_claimed
from aiops.logs import storage as logstate
from aiops.owner import owner_name
from aiops.rules import evaluation as rules
from aiops.settings import Settings, settings_of
from telemetry import store, work_spans
from telemetry.db import db

log = logging.getLogger(__name__)
PRUNE_EVERY = 600.0  # seconds between retention passes
TEMPO_JOB_ID = "aiops-tempo-pull"
# The spans of the worker's own work (telemetry.work_spans), under the service of the app's own routes.
CYCLE_SPAN, DELIVERY_SPAN = "detection cycle", "outbox delivery"


@dataclass(frozen=True)
class Job:
    """One periodic job: a stable id (scheduled idempotently), its period, and its body."""

    id: str
    seconds: float
    run: Callable[[Worker], object]


def outbound(settings: Settings) -> bool:
    """Whether the outbox has anywhere to send: notifications on and a channel or hook configured
    (a trace-query rule's webhook counts as configured whenever notifications are on: rules are made
    at run time)."""
    return bool(settings.notifications) and any(
        outbox.configured(settings, channel) for channel in outbox.CHANNELS)


def jobs(settings: Settings, detection: bool = True) -> list[Job]:
    """The periodic work of a worker process (``detection=False``: no periodic cycles)."""
    found = []
    if detection:
        found += [
            Job("aiops-detection", settings.detection_interval, Worker.detect),
            Job("aiops-retention", PRUNE_EVERY, Worker.prune),
            Job(rules.JOB_ID, settings.rules_interval, Worker.evaluate_rules),
        ]
    if outbound(settings):
        found.append(Job(outbox.JOB_ID, settings.notify_poll, Worker.deliver))
    if settings.tempo_url:
        found.append(Job(TEMPO_JOB_ID, settings.tempo_interval, Worker.pull_tempo))
    return found


class Worker:
    """The scheduler and the on-demand listener of one process."""

    def __init__(self, app: Flask):
        self.app = app
        self.settings = settings_of(app)
        self.detection = self.settings.scheduler
        self.name = owner_name()
        self.started_at = time.time()
        self.stopping = threading.Event()
        self._cycle = threading.Lock()  # one cycle at a time in this process (scheduled or asked for)
        self._scheduler: BackgroundScheduler | None = None
        self._listener: threading.Thread | None = None
        self._tempo = None  # the Tempo source (AIOPS_TEMPO_URL), made on its first poll

    # --- job bodies ------------------------------------------------------------------------------

    def _claimed_cycle(self, force: bool) -> dict | None:
        with self._cycle:
            started, t0 = time.time(), time.perf_counter()
            try:
                summary = run_claimed(self.settings, force=force)
            except Exception as exc:
                log.exception("detection cycle failed")
                work_spans.record(self.app, CYCLE_SPAN, started, (time.perf_counter() - t0) * 1000,
                                  {}, exc)
                return None
            finally:
                db.session.remove()
        if summary is not None:
            log.info(
                "detection cycle: %d spans, %d anomalies, opened %s",
                summary["spans"],
                len(summary["anomalies"]),
                summary["incidents_opened"],
            )
            work_spans.record(self.app, CYCLE_SPAN, summary["started_at"], summary["duration_ms"], {
                "aiops.cycle.spans": summary["spans"],
                "aiops.cycle.anomalies": len(summary["anomalies"]),
                "aiops.cycle.incidents_opened": len(summary["incidents_opened"]),
                "aiops.cycle.incidents_resolved": len(summary["incidents_resolved"]),
                "aiops.cycle.notifications_queued": summary["notifications_queued"],
            })
        return summary

    def detect(self) -> dict | None:
        with self.app.app_context():
            return self._claimed_cycle(force=False)

    def prune(self) -> None:
        cutoff = time.time() - self.settings.retention_hours * 3600
        with self.app.app_context():
            try:
                prune_cycles(cutoff)
                removed = store.prune_spans(db.engine, cutoff)
                logs = store.prune_logs(db.engine, cutoff)
                logs += store.prune_metrics(db.engine, cutoff)
                logstate.prune_templates(cutoff)
                if removed or logs:
                    log.info("retention: pruned %d spans, %d log records or metric points, older than %.1f h",
                             removed, logs, self.settings.retention_hours)
            except Exception:
                log.exception("retention pass failed")
            finally:
                db.session.remove()

    def evaluate_rules(self) -> dict | None:
        return rules.tick(self.app)

    def deliver(self) -> int:
        started, t0 = time.time(), time.perf_counter()
        taken = outbox.tick(self.app)
        if taken:
            work_spans.record(self.app, DELIVERY_SPAN, started, (time.perf_counter() - t0) * 1000,
                              {"aiops.outbox.messages": taken})
        return taken

    def pull_tempo(self):
        """One poll of the Tempo source (:mod:`telemetry.tempo_source`): it never raises, and keeps
        what it learned (traces stored, TraceQL refused) from one poll to the next."""
        from telemetry.tempo_source import TempoSource

        if self._tempo is None:
            self._tempo = TempoSource(self.settings)
        with self.app.app_context():
            try:
                return self._tempo.poll(db.engine)
            finally:
                db.session.remove()

    # --- on demand -------------------------------------------------------------------------------

    def _serve_requests(self) -> None:
        """Answer ``POST /aiops/analyze``: wake on the doorbell, or every heartbeat to stay seen."""
        settle = self.settings.flush_interval * 1.5  # the asking web workers' buffers reach the store
        with self.app.app_context():
            listener = doorbell.Listener(db.engine, doorbell.ANALYZE)
            try:
                while not self.stopping.is_set():
                    try:
                        on_demand.beat(self.name, self.started_at)
                        on_demand.answer(
                            lambda: self._claimed_cycle(force=True),
                            self.name,
                            lambda left: self.stopping.wait(max(0.0, left + settle)),
                        )
                    except Exception:
                        log.exception("answering cycle requests failed")
                        db.session.rollback()
                    listener.wait(on_demand.HEARTBEAT)
            finally:
                listener.close()
                try:
                    on_demand.leave(self.name)
                except Exception:
                    log.exception("could not sign the worker off")
                db.session.remove()

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Worker:
        selfmetrics.metrics()  # this process's families exist (at zero) from the start
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)  # a line per run
        self._scheduler = BackgroundScheduler(daemon=True)
        planned = jobs(self.settings, self.detection)
        for job in planned:
            self._scheduler.add_job(
                job.run,
                "interval",
                args=[self],
                seconds=job.seconds,
                id=job.id,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                replace_existing=True,
            )
        self._scheduler.start()
        self._listener = threading.Thread(target=self._serve_requests, name="aiops-on-demand", daemon=True)
        self._listener.start()
        if self.detection:
            # tests/e2e read this line to know which processes run cycles
            log.info(
                "detection scheduler started in pid %d (every %ss)",
                os.getpid(),
                self.settings.detection_interval,
            )
        log.info("worker %s runs: %s", self.name, ", ".join(j.id for j in planned) or "nothing")
        return self

    def stop(self) -> None:
        """Let running jobs finish, then stop (SIGTERM of ``flask aiops worker``)."""
        self.stopping.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        if self._listener is not None:
            self._wake_listener()
            self._listener.join(timeout=on_demand.HEARTBEAT * 2)

    def _wake_listener(self) -> None:
        """Ring our own doorbell so the listener sees ``stopping`` now, not at its next heartbeat
        (5 s added to every stop). A ring carries nothing: other workers it wakes look and sleep."""
        try:
            with self.app.app_context():
                doorbell.ring(db.engine, doorbell.ANALYZE)
        except Exception:
            log.warning("could not wake the on-demand listener; it stops at its next heartbeat")


def start(app: Flask) -> Worker:
    """Start the scheduled work in this process (the worker command, or the demo's thread).
    With ``AIOPS_SCHEDULER=0`` it runs cycles only when asked (``POST /aiops/analyze``)."""
    worker = Worker(app).start()
    app.extensions["aiops.jobs.worker"] = worker
    return worker
