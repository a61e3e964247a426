"""``trace_anomalies_total{type}`` on ``GET /metrics``: the alerts trace-query rules raised, per
anomaly type. Read from the store at scrape time (a count of alert rows), so every web worker and
instance gives the same figure and it survives restarts. An alert seen again is not counted again.
A failing read is left out of that scrape, logged and counted (:func:`telemetry.selfmetrics.add_collector`).
"""

from __future__ import annotations

from aiops.kinds import RuleKind
from aiops.rules import service

NAME = "trace_anomalies"


def trace_anomalies() -> list:
    from prometheus_client.core import CounterMetricFamily

    from telemetry.db import db

    counts = service.alert_counts()
    db.session.rollback()
    family = CounterMetricFamily(NAME, "Alerts raised by trace-query rules, per anomaly type",
                                 labels=["type"])
    for kind in sorted({*RuleKind, *counts}):
        family.add_metric([kind], float(counts.get(kind, 0)))
    return [family]
