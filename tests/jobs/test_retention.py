"""Retention keeps the store bounded: old spans and cycle history go, new ones stay."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import func, select

from aiops.jobs import worker
from aiops.settings import reconfigure
from aiops.store.models import DetectionCycle, LogTemplate
from telemetry import store
from telemetry.columns import KIND_SERVER
from telemetry.db import db
from telemetry.models import LogRecord, Span
from tests.support.factories import span_row


def _rows(n: int, start: float) -> list[tuple]:
    values = dict(service="shop", endpoint="payment", kind=KIND_SERVER, method="POST", status_code=200,
                  error=False, duration_ms=12.0)
    rows = []
    for i in range(n):
        values.update(trace_id=uuid.uuid4().hex, span_id=uuid.uuid4().hex[:16], start_time=start + i * 0.001)
        rows.append(span_row(**values))
    return rows


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_prune_removes_only_spans_older_than_the_cutoff_in_batches(app):
    now = time.time()
    with app.app_context():
        store.insert_spans(db.engine, _rows(1200, now - 7200) + _rows(300, now - 10))
        removed = store.prune_spans(db.engine, now - 3600, batch=500)  # three batches of old spans
        assert removed == 1200
        assert _count(Span) == 300
        assert db.session.scalar(select(func.min(Span.start_time))) >= now - 10
        assert store.prune_spans(db.engine, now - 3600) == 0


def test_the_scheduled_tick_applies_retention_to_spans_and_cycle_history(app):
    reconfigure(app, retention_hours=1.0)
    now = time.time()
    with app.app_context():
        store.insert_spans(db.engine, _rows(50, now - 7200) + _rows(20, now - 5))
        old = [(now - 7200 + i, "orders", 9, "INFO", "old", None, None, None) for i in range(30)]
        store.insert_logs(db.engine, [*old, (now - 5, "orders", 9, "INFO", "new", None, None, None)])
        db.session.add(LogTemplate(service="orders", template_id=99, template="gone <NUM>",
                                   first_seen=now - 9000, last_seen=now - 7200, count=5, exception=False))
        db.session.add(DetectionCycle(started_at=now - 7200, finished_at=now - 7199, owner="old:1", spans=0,
                                      anomalies=0, incidents_opened=0, incidents_updated=0,
                                      incidents_resolved=0))
        db.session.commit()
    summary = worker.Worker(app).detect()
    worker.Worker(app).prune()
    assert summary is not None and summary["spans"] == 70  # the cycle still saw everything new to it
    with app.app_context():
        assert _count(Span) == 20
        assert [r.body for r in db.session.scalars(select(LogRecord))] == ["new"]  # logs share the retention
        # Templates last seen before the cutoff go; the one the cycle just mined ("new") stays.
        assert [t.template for t in db.session.scalars(select(LogTemplate))] == ["INFO new"]
        owners = [c.owner for c in db.session.scalars(select(DetectionCycle))]
        assert "old:1" not in owners and len(owners) == 1
