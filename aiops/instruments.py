"""The detection side's own Prometheus metrics: cycles, anomalies, incidents, outbox sends.

Counted by the process that does the work (the worker) in the same
multiprocess directory as the recording metrics (:mod:`telemetry.selfmetrics`
chooses it and serves ``GET /metrics``); recording defines none of these.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from aiops.kinds import AnomalyType
from telemetry.selfmetrics import never_raise, per_process

CYCLE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class _Metrics:
    def __init__(self):
        from prometheus_client import Counter, Histogram

        self.cycle = Histogram("aiops_detection_cycle_duration_seconds", "Duration of detection cycles "
                               "this server ran", buckets=CYCLE_BUCKETS, registry=None)
        self.cycle_failures = Counter("aiops_detection_cycle_failures", "Detection cycles that failed",
                                      registry=None)
        self.anomalies = Counter("aiops_anomalies", "Anomalies detected, by type", ["type"], registry=None)
        self.incidents = Counter("aiops_incidents_opened", "Incidents opened, by the type of the "
                                 "anomaly that opened them and severity", ["type", "severity"], registry=None)
        self.stormed = Counter("aiops_incident_storm_groups", "New root causes merged into an incident "
                               "storm because a cycle found more than AIOPS_MAX_NEW_INCIDENTS", registry=None)
        self.notifications = Counter("aiops_notification_attempts", "Outbox sends this server made, by "
                                     "channel and outcome (delivered, retry, failed)", ["channel", "outcome"],
                                     registry=None)
        for kind in AnomalyType:  # export zeros, so rate() works from the first scrape
            self.anomalies.labels(kind.value)


metrics = per_process(_Metrics)


@never_raise
def cycle_finished(seconds: float, anomaly_types: Iterable[str], opened: Iterable[tuple[str, str]],
                   stormed: int = 0) -> None:
    """A committed detection cycle: its duration, anomaly types, (type, severity) of new incidents,
    and how many new root causes went into an incident storm."""
    m = metrics()
    m.cycle.observe(seconds)
    if stormed:
        m.stormed.inc(stormed)
    for kind, count in Tally(str(t) for t in anomaly_types).items():
        m.anomalies.labels(kind).inc(count)
    for (kind, severity), count in Tally((str(k), str(s)) for k, s in opened).items():
        m.incidents.labels(kind, severity).inc(count)


@never_raise
def notification_attempted(channel: str, outcome: str) -> None:
    """One outbox send (or a row failed unsent): ``delivered``, ``retry`` or ``failed``."""
    metrics().notifications.labels(str(channel), outcome).inc()


@never_raise
def cycle_failed() -> None:
    metrics().cycle_failures.inc()
