"""Hand-built span rows for the pure detection and RCA tests.

A span is a plain object with the attributes of a stored row
(:data:`telemetry.models.SPAN_FIELDS`), as the detection cycle reads them.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from telemetry.models import KIND_CLIENT, KIND_SERVER, SPAN_FIELDS

_ids = itertools.count(1)


def new_trace_id() -> str:
    return format(next(_ids), "032x")


def span(endpoint: str, duration_ms: float = 10.0, *, trace_id: str | None = None, parent=None,
         service: str = "shop", status_code: int | None = 200, error: bool | None = None,
         exception_type: str | None = None, exception_message: str | None = None,
         start_time: float = 1_000.0) -> SimpleNamespace:
    """A SERVER span; ``parent`` is another span (its trace is inherited)."""
    if error is None:
        error = exception_type is not None or (status_code is not None and status_code >= 500)
    values = dict(
        trace_id=trace_id or (parent.trace_id if parent is not None else new_trace_id()),
        span_id=format(next(_ids), "016x"),
        parent_span_id=parent.span_id if parent is not None else None,
        service=service,
        endpoint=endpoint,
        kind=KIND_SERVER,
        method="GET",
        status_code=status_code,
        error=error,
        start_time=start_time,
        duration_ms=duration_ms,
        peer=None,
        exception_type=exception_type,
        exception_message=exception_message,
        exception_stack=None,
    )
    assert set(values) == set(SPAN_FIELDS)
    return SimpleNamespace(**values)


def client(parent, peer: str, duration_ms: float = 10.0, **kw) -> SimpleNamespace:
    """A CLIENT span of ``parent``'s service calling endpoint ``peer`` of the same service
    (the ``peer`` column names the callee *service*, as the demo recorders write it)."""
    s = span(peer, duration_ms, parent=parent, service=parent.service, **kw)
    s.kind = KIND_CLIENT
    s.peer = parent.service
    return s
