"""Gauges ``GET /metrics`` reads from the store at scrape time: open incidents, the last detection
cycle, the outbox.

They describe the shared state, not one process's work, so they are read from the database on
every scrape: whichever web worker and whichever instance answers, they agree (counters, by
contrast, are each process's own: :mod:`telemetry.selfmetrics`). Each reader costs one aggregate
statement over an indexed or bounded set of rows; one that fails is left out of that scrape and
counted in ``aiops_scrape_errors_total{collector}`` (``telemetry.selfmetrics.add_collector``), so
``/metrics`` still answers while the database is down (and the counters say why the gauges went).

To add gauges (SLO burn rates, silences), write a reader returning metric families and add it to
:data:`READERS`, or call ``telemetry.selfmetrics.add_collector(app, name, reader)`` from your own
package's ``init_app``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from flask import Flask
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from aiops.incidents import reports
from aiops.kinds import Channel, IncidentKind, Severity
from aiops.settings import current_settings
from aiops.store.models import DetectionCycle, Incident, Notification
from telemetry import selfmetrics
from telemetry.db import db

MAX_OPEN_SCANNED = 1000  # open incidents read per scrape (the storm ceiling keeps far fewer open)


def incidents_open() -> Iterable[GaugeMetricFamily]:
    """``aiops_incidents_open{kind,severity}``: incidents not resolved (open or acknowledged, as
    ``GET /aiops/incidents`` lists them as active), zero for every kind and severity with none."""
    # The kind is the report's (aiops.incidents.reports.kind): it reads the current anomalies.
    rows = db.session.scalars(
        select(Incident).where(Incident.status != "resolved")
        .order_by(Incident.last_seen.desc()).limit(MAX_OPEN_SCANNED)
        .options(selectinload(Incident.anomalies))
    )
    counts = Counter((reports.kind(i.to_dict()), i.severity) for i in rows)
    gauge = GaugeMetricFamily("aiops_incidents_open", "Incidents open or acknowledged (not resolved), "
                              "by kind and severity, read from the store", labels=["kind", "severity"])
    for kind in IncidentKind:
        for severity in Severity:
            counts.setdefault((kind.value, severity.value), 0)
    for (kind, severity), n in sorted(counts.items()):
        gauge.add_metric([kind, severity], n)
    yield gauge


def detection() -> Iterable[GaugeMetricFamily]:
    """``aiops_detection_last_cycle_timestamp_seconds`` (absent before the first cycle) and
    ``aiops_detection_interval_seconds``, so an alert can say "no cycle for 3 intervals"."""
    last = db.session.scalar(select(func.max(DetectionCycle.finished_at)))  # pruned: bounded
    if last is not None:
        yield GaugeMetricFamily("aiops_detection_last_cycle_timestamp_seconds", "When the last "
                                "completed detection cycle finished (Unix time), read from the store",
                                value=last)
    yield GaugeMetricFamily("aiops_detection_interval_seconds", "Seconds between detection cycles "
                            "(AIOPS_DETECTION_INTERVAL)", value=current_settings().detection_interval)


def outbox_pending() -> Iterable[GaugeMetricFamily]:
    """``aiops_outbox_pending{channel}`` and the oldest pending message's creation time, per channel."""
    rows = db.session.execute(
        select(Notification.channel, func.count(), func.min(Notification.created_at))
        .where(Notification.status == "pending").group_by(Notification.channel)
    ).all()
    pending = GaugeMetricFamily("aiops_outbox_pending", "Notifications and remediation calls waiting "
                                "to be sent (or retried), by channel, read from the store",
                                labels=["channel"])
    oldest = GaugeMetricFamily("aiops_outbox_oldest_pending_timestamp_seconds", "When the oldest "
                               "message still waiting was written (Unix time), by channel",
                               labels=["channel"])
    counts = {channel.value: 0 for channel in Channel}
    for channel, n, first in rows:
        counts[channel] = n
        oldest.add_metric([channel], first)
    for channel, n in sorted(counts.items()):
        pending.add_metric([channel], n)
    yield pending
    yield oldest


READERS: tuple[tuple[str, Callable[[], Iterable]], ...] = (
    ("incidents", incidents_open),
    ("detection", detection),
    ("outbox", outbox_pending),
)


def init_app(app: Flask) -> None:
    for name, reader in READERS:
        selfmetrics.add_collector(app, name, reader)
