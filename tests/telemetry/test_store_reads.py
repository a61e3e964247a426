"""Reads of the span store that detection asks for (telemetry.store), on both stores."""

from __future__ import annotations

import uuid

from telemetry import store
from telemetry.columns import KIND_CLIENT, KIND_SERVER
from tests.support.factories import insert_spans, span_row


def _call(t: float, *, status: int | None, error: bool, exception: str | None = None, answered: bool,
          peer: str = "recs", endpoint: str = "GET") -> list[tuple]:
    trace, ids = uuid.uuid4().hex, [uuid.uuid4().hex[:16] for _ in range(2)]
    rows = [span_row(trace_id=trace, span_id=ids[0], parent_span_id=None, service="front", endpoint=endpoint,
                     kind=KIND_CLIENT, start_time=t, duration_ms=5.0, peer=peer, status_code=status,
                     error=error, exception_type=exception)]
    if answered:
        rows.append(span_row(trace_id=trace, span_id=ids[1], parent_span_id=ids[0], service=peer,
                             endpoint="/suggest", kind=KIND_SERVER, start_time=t, duration_ms=4.0,
                             status_code=status, error=error))
    return rows


def test_recent_calls_counts_the_calls_that_failed_with_no_answer(app):
    t = 5_000_000.0
    rows = (
        _call(t, status=None, error=True, exception="ConnectionResetError", answered=False)  # refused
        + _call(t + 1, status=None, error=True, answered=False)  # lost: no exception named
        + _call(t + 2, status=200, error=False, answered=True)
        + _call(t + 3, status=503, error=True, answered=False)  # a 5xx is an answer
        + _call(t + 4, status=None, error=True, exception="ReadTimeout", answered=False)  # the timeout rule's
        + _call(t + 5, status=None, error=True, exception="ConnectionResetError", answered=True)  # recs spoke
        + _call(t - 60, status=None, error=True, answered=False)  # before the window asked about
        + _call(t, status=None, error=True, answered=False, endpoint="POST")  # another operation
        + _call(t, status=None, error=True, answered=False, peer="other")
    )
    insert_spans(app, rows)
    with app.app_context():
        assert store.recent_calls({("recs", "GET"): ["front"], ("absent", "GET"): ["front"]}, t - 1) == {
            ("recs", "GET"): (6, 2, 1), ("absent", "GET"): (0, 0, 0)}
        assert store.recent_calls({("recs", "GET"): ["other"]}, t - 1) == {("recs", "GET"): (0, 0, 0)}
