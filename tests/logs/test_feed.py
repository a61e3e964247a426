"""The log store as the detection cycle's feed: every stored line reaches one cycle, once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from aiops.logs import feed as logfeed
from telemetry import store
from telemetry.db import db
from telemetry.models import LogRecord
from tests.support.factories import log_row


def _rows(at: float, n: int, service: str = "orders", severity: int = 17) -> list[tuple]:
    return [log_row(at + i * 0.01, f"refund {i} failed", service=service, severity=severity,
                    severity_text="ERROR", trace_id="ab" * 16, span_id="cd" * 8) for i in range(n)]


def test_every_stored_line_is_taken_once_in_order(app):
    now = time.time()
    feed = logfeed.StoreFeed()
    with app.app_context():
        store.insert_logs(db.engine, _rows(now - 3600, 5))  # history: older than the first look-back
        store.insert_logs(db.engine, _rows(now - 10, 3))
        first = feed.take(now)
        assert [r.body for r in first] == ["refund 0 failed", "refund 1 failed", "refund 2 failed"]
        assert {(r.service, r.severity_number, r.trace_id) for r in first} == {("orders", 17, "ab" * 16)}
        assert feed.take(now) == []
        db.session.remove()  # each cycle reads in a transaction of its own
        store.insert_logs(db.engine, _rows(now, 2, service="payment"))
        assert [r.service for r in feed.take(now + 1)] == ["payment", "payment"]


def test_every_app_reads_its_log_store_and_a_cycle_consumes_it(app, client):
    """No logs: the cycle is the trace-only one. Stored lines: the next cycle takes them."""
    reg = logfeed.registered(app)
    assert isinstance(reg.feed, logfeed.StoreFeed)
    assert client.post("/aiops/analyze").status_code == 200
    with app.app_context():
        store.insert_logs(db.engine, _rows(time.time() - 5, 4))
    assert client.post("/aiops/analyze").status_code == 200
    with app.app_context():
        assert reg.feed.cursor == store.max_span_id(model=LogRecord)  # the cycle took them
        assert reg.feed.take(time.time()) == []


def test_batch_writers_of_one_sqlite_file_take_turns_and_all_is_stored(tmp_path):
    """Threads storing batches at once wait their turn (a mutex, then an flock on a file beside the
    database, which a server's other workers take too): every row arrives."""
    from sqlalchemy import create_engine

    from telemetry.db import configure_engine

    path = tmp_path / "turns.db"
    engine = create_engine(f"sqlite:///{path}")
    configure_engine(engine)
    LogRecord.__table__.create(engine)
    now = time.time()
    batches = [_rows(now + n, 50, service=f"s{n}") for n in range(16)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda rows: store.insert_logs(engine, rows), batches))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*), count(DISTINCT service) FROM logs").one() == (800, 16)
    assert (tmp_path / "turns.db-writers.lock").exists()
    engine.dispose()
