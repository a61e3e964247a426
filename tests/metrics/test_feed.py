"""Metric evidence read from the store (aiops.metrics.feed), both backends: the resource series of
the services asked for, judged at the cycle's clock; other names, services and later points unread."""

from __future__ import annotations

from aiops.metrics.feed import loader
from telemetry.db import db
from telemetry.store import insert_metrics


def test_the_hogged_pod_is_found_among_the_services_asked_for(app):
    rows = []
    for minute in range(12):
        t = 1_000.0 + 60 * minute
        for service in ("orders", "payments", "billing"):
            hog = service in ("orders", "billing") and minute == 11
            rows.append(
                (
                    t,
                    service,
                    f"{service}-1",
                    None,
                    "k8s.pod.cpu.usage",
                    None,
                    (2.0 if hog else 0.2) + 0.001 * (minute % 3),
                )
            )
            rows.append((t, service, f"{service}-1", None, "app.queue.depth", None, 99.0 if hog else 1.0))
    rows.append((1_000.0 + 60 * 12, "payments", "payments-1", None, "k8s.pod.cpu.usage", None, 9.0))  # later
    with app.app_context():
        insert_metrics(db.engine, rows)
        found = loader(1_000.0 + 60 * 11 + 5)(["orders", "payments"])
    assert set(found) == {"orders"}  # billing was not asked for; payments' rise is after the clock
    (shift,) = found["orders"].signals
    assert shift.name == "k8s.pod.cpu.usage" and shift.pod == "orders-1" and shift.z > 50
    assert shift.band.median < 0.21 < shift.observed
