"""The write path of the span, log and metric store (``telemetry.store``; ``telemetry.pg_copy`` on
PostgreSQL): what goes in comes back, a span is stored once, bad text is refused whole."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from telemetry import store
from telemetry.columns import LOG_FIELDS, METRIC_FIELDS, SPAN_FIELDS
from telemetry.db import db
from telemetry.models import LogRecord, MetricPoint, Span
from tests.support import factories
from tests.support.factories import (
    LOG_TRACE,
    T0,
    log_record,
    logs_request,
    make_request,
    make_span,
    row_of,
    span,
)
from tests.support.otlp_http import JS, PB, encoded, post, stored


def _rows(app, model, fields) -> list[tuple]:
    with app.app_context():
        rows = db.session.execute(select(*(model.__table__.c[f] for f in fields))
                                  .where(model.__table__.c.service != "aiops").order_by(model.id)).all()
        db.session.remove()
    return [tuple(r) for r in rows]


def _spans(n: int, trace_id: str | None = None) -> list[tuple]:
    root = span("checkout", 12.5, trace_id=trace_id, start_time=T0 + 0.123456, status_code=None,
                exception_type="TimeoutError", exception_message="é\nline two")
    rows = [row_of(root), row_of(factories.client(root, "payment", 3.25))]
    rows += [row_of(span(f"e{i}", i / 3, parent=root, start_time=T0 + i)) for i in range(n - 2)]
    return [r[:-1] + ('{"k8s.pod.name":"a-1","n":7}',) for r in rows]  # the attributes text


def test_every_column_of_every_table_comes_back_as_written(app):
    spans = _spans(5)
    logs = [(T0 + 0.5, "orders", 17, "ERROR", "é\ttab", LOG_TRACE, "00f067aa0ba902b7", '{"a":1}'),
            (T0, "orders", 0, None, None, None, None, None)]
    points = [(T0, "orders", "orders-1", None, "cpu.rate", '{"cpu":"0"}', 0.25),
              (T0 + 1e-6, "orders", None, "node-1", "mem", None, -1e300)]
    with app.app_context():
        store.insert_spans(db.engine, spans)
        store.insert_logs(db.engine, logs)
        store.insert_metrics(db.engine, points)
    assert _rows(app, Span, SPAN_FIELDS) == spans
    assert _rows(app, LogRecord, LOG_FIELDS) == logs
    assert _rows(app, MetricPoint, METRIC_FIELDS) == points


def test_a_retried_batch_stores_only_its_new_spans_in_order(app):
    """A client retries a batch we stored, adding new spans and repeating one within the batch
    (on PostgreSQL the COPY fails on the unique index and the batch takes the temporary table)."""
    first, more = _spans(4), _spans(3)
    with app.app_context():
        store.insert_spans(db.engine, first)
        store.insert_spans(db.engine, first[2:] + [more[0], first[0], more[1], more[1], more[2]])
        ids = db.session.scalars(select(Span.id).order_by(Span.id)).all()
        store.insert_spans(db.engine, first)  # nothing new at all
        db.session.remove()
    assert _rows(app, Span, SPAN_FIELDS) == first + more
    assert len(ids) == 7 and ids == sorted(ids)


def test_concurrent_writers_of_the_same_spans_store_each_once(app):
    """Writers of overlapping batches wait for each other on the unique index: none fails, none
    stores a span twice."""
    batches = [_spans(40, trace_id=f"{t:032x}") for t in range(6)]
    errors = []

    def write(k: int) -> None:
        try:
            with app.app_context():
                for n in range(len(batches)):
                    store.insert_spans(db.engine, batches[(k + n) % len(batches)])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(_rows(app, Span, SPAN_FIELDS)) == sorted(r for b in batches for r in b)


def test_hostile_strings_through_ingest_are_cleaned_alike_on_both_stores(app, client):
    """OTLP ingest strips NUL and replaces lone surrogates (a JSON escape) before rows reach the
    store: both stores hold the same text."""
    request = make_request({"ord\x00ers": [make_span(1, name="GET \x00/x", attrs={"note": "a\x00bLONEc"}),
                                           make_span(2, name="LONE!")]})
    body = encoded(request, JS).replace(b"LONE", b"\\ud800")
    assert post(client, body, JS).status_code == 200
    spans = stored(app)
    assert [(s.service, s.endpoint) for s in spans] == [("orders", "GET /x"), ("orders", "\ufffd!")]
    assert spans[0].attributes == '{"note":"ab\ufffdc"}'
    logs = logs_request({"orders": [log_record(1, body="a\x00b"), log_record(2, body="\x00")]})
    assert post(client, logs.SerializeToString(), PB, path="/v1/logs").status_code == 200
    assert [r[0] for r in _rows(app, LogRecord, ("body",))] == ["ab", None]


def _with(row: tuple, fields: tuple[str, ...], name: str, value: str) -> tuple:
    at = fields.index(name)
    return row[:at] + (value,) + row[at + 1:]


@pytest.mark.parametrize("insert, good, fields, column", [
    (store.insert_spans, _spans(3), SPAN_FIELDS, "exception_message"),
    (store.insert_logs, [(T0, "orders", 9, None, "ok", None, None, None)], LOG_FIELDS, "body"),
])
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_nul_or_a_lone_surrogate_fails_the_whole_batch_on_postgresql(app, insert, good, fields, column):
    """A NUL in a text value (a recorder's exception message, say) is refused as a ``DataError``; a
    lone surrogate cannot be encoded. The batch is stored whole or not at all, and the connection
    is fine for the next (SQLite stores a NUL as it is)."""
    import psycopg

    with app.app_context():
        with pytest.raises((psycopg.DataError, sa.exc.DataError)):
            insert(db.engine, good[1:] + [_with(good[0], fields, column, "a\x00b")])
        with pytest.raises(UnicodeEncodeError):
            insert(db.engine, good[1:] + [_with(good[0], fields, column, "a\ud800b")])
        insert(db.engine, good)
    assert _rows(app, Span if insert is store.insert_spans else LogRecord, fields) == good
