"""Incident rows written straight to the store, for tests of what reads them (lists, pages, the API)."""

from __future__ import annotations

from aiops.store.models import AnomalyRecord, Incident
from telemetry.db import db


def add_incidents(app, count: int, start: int = 0, anomalies: int = 3, **fields) -> list[str]:
    """``count`` incidents with ``anomalies`` anomalies each; incident n was last seen at 1000 + n."""
    ids = []
    with app.app_context():
        for n in range(start, start + count):
            status = fields.get("status") or ("resolved" if n % 3 == 0 else "open")
            incident = Incident(
                id=f"INC-{1000 + n}-{n}", status=status, severity=fields.get("severity", "high"),
                title=f"payment slow {n}", root_service=fields.get("service", "shop"),
                root_endpoint="payment", root_issue="Latency spike", candidates=[], affected=["payment"],
                correlated_failures=[],
                first_detected=1000.0 + n, last_seen=fields.get("last_seen", 1000.0 + n), clean_cycles=0,
                timeline=[], resolved_at=1000.0 + n if status == "resolved" else None,
            )
            incident.anomalies = [
                AnomalyRecord(service="shop", endpoint="payment", type="latency", observed=900.0 + k,
                              baseline=20.0, request_count=10, message="slow", detected_at=1000.0 + n,
                              trace_ids=[])
                for k in range(anomalies)
            ]
            db.session.add(incident)
            ids.append(incident.id)
        db.session.commit()
    return ids
