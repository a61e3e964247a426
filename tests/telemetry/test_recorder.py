"""Recording requests as span rows: trace propagation, exceptions, store failures, both recorders."""

from __future__ import annotations

import secrets
import threading

import pytest
import requests
from sqlalchemy import text

from telemetry.buffer import SpanBuffer
from telemetry.columns import KIND_CLIENT, KIND_SERVER, SPAN_FIELDS
from telemetry.db import db
from telemetry.models import Span
from tests.conftest import make_app
from tests.support.loopback import LoopbackServer, stored


def traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


# -- (a) trace context ---------------------------------------------------------


def test_lean_recorder_continues_an_incoming_traceparent(app, client):
    trace_id, parent_id, header = traceparent()
    assert client.get("/health", headers={"traceparent": header}).status_code == 200
    [span] = stored(app)
    assert (span.trace_id, span.parent_span_id) == (trace_id, parent_id)
    assert len(span.span_id) == 16 and span.span_id != parent_id
    assert (span.service, span.endpoint, span.kind, span.method, span.status_code, span.error) == (
        "shop", "health", KIND_SERVER, "GET", 200, False)


def test_without_or_with_a_bad_traceparent_a_new_trace_starts(app, client):
    client.get("/health")
    client.get("/health", headers={"traceparent": "00-not-a-trace-01"})
    client.get("/health", headers={"traceparent": "00-" + "0" * 32 + "-" + "1" * 16 + "-01"})
    spans = stored(app)
    assert len(spans) == 3
    assert all(s.parent_span_id is None for s in spans)
    assert len({s.trace_id for s in spans}) == 3
    assert all(len(s.trace_id) == 32 and s.trace_id != "0" * 32 for s in spans)


def test_product_routes_and_unknown_paths_are_kept_apart(app, client):
    """The product's own calls are service 'aiops' (never analysed); a 404 is '<unmatched>'."""
    client.get("/aiops/incidents")
    client.get("/no/such/path")
    spans = stored(app)
    assert [(s.service, s.endpoint, s.status_code, s.error) for s in spans] == [
        ("aiops", "aiops/incidents", 200, False),
        ("shop", "<unmatched>", 404, False),
    ]


# -- (b) unhandled exceptions --------------------------------------------------


@pytest.mark.parametrize("propagate", [False, True], ids=["handled-as-500", "propagated"])
def test_unhandled_exception_is_recorded(app_factory, propagate):
    """Whether Flask turns the exception into a 500 or lets it reach the server, the span has it."""
    app = app_factory(PROPAGATE_EXCEPTIONS=propagate)
    client = app.test_client()
    client.post("/simulate/error?endpoint=payment&rate=1")
    if propagate:
        from simulation.shop import InjectedFault

        with pytest.raises(InjectedFault):
            client.post("/payment")
    else:
        assert client.post("/payment").status_code == 500
    [span] = stored(app, endpoint="payment")
    assert span.status_code == 500 and span.error is True
    assert span.exception_type == "simulation.shop.InjectedFault"  # as the OpenTelemetry SDK names it
    assert span.exception_message == "injected error on payment"
    assert span.exception_stack.startswith("Traceback (most recent call last):")
    assert 'in _apply_fault\n    raise InjectedFault(' in span.exception_stack
    assert span.exception_stack.rstrip().endswith("InjectedFault: injected error on payment")


def test_an_exception_message_with_a_nul_does_not_cost_its_batch(app_factory):
    """PostgreSQL takes no NUL in text: uncleaned, such a message failed the whole buffered batch
    at every retry, the other requests' spans with it."""
    app = app_factory(PROPAGATE_EXCEPTIONS=False)

    def boom():
        raise ValueError("bad\x00byte")

    app.add_url_rule("/boom", "boom", boom)
    client = app.test_client()
    assert client.get("/boom").status_code == 500
    assert client.get("/health").status_code == 200
    spans = {s.endpoint: s for s in stored(app)}
    assert set(spans) == {"boom", "health"}
    assert (spans["boom"].exception_type, spans["boom"].exception_message) == ("ValueError", "badbyte")
    assert "\x00" not in spans["boom"].exception_stack


def test_exception_fields_are_cleaned_and_bounded_as_ingest_cleans_them():
    """A lone surrogate fails a batch on both stores; the type's column holds 255 characters."""
    from telemetry.columns import MAX_EXC_TYPE
    from telemetry.rows import exception_fields

    long = type("E" * 300, (Exception,), {})
    exc_type, message, stack = exception_fields(long("x \udcff y"))
    assert message == "x ? y" and "\udcff" not in stack
    assert len(exc_type) == MAX_EXC_TYPE


# -- (c) a failing store never fails a request ---------------------------------


def test_store_failure_is_counted_and_retried_never_a_500(app, client):
    for _ in range(2):
        assert client.get("/health").status_code == 200
    assert len(stored(app)) == 2
    buffer = app.extensions["aiops_buffer"]

    # Take the span table away: every write now fails in the real writer.
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE spans RENAME TO spans_away"))
    for _ in range(3):
        assert client.get("/health").status_code == 200
        assert client.post("/payment").status_code == 200
    assert buffer.flush() == 0
    stats = buffer.stats()
    assert stats["store_errors"] >= 1
    assert stats["pending"] == 9 and stats["dropped"] == 0  # payment's call to its gateway is a span too

    # The store recovers: the retained spans are written by the next flush, none lost.
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE spans_away RENAME TO spans"))
    spans = stored(app)
    assert [s.endpoint for s in spans] == ["health"] * 2 + ["health", "charge", "payment"] * 3
    assert buffer.stats()["pending"] == 0 and buffer.stats()["written"] == 11


# -- (d) lean and otel write the same rows -------------------------------------


@pytest.fixture
def servers(app_factory):
    """One server per recorder, on one database (so they share injected faults)."""
    running = {kind: LoopbackServer(app_factory(AIOPS_RECORDER=kind, TESTING=False))
               for kind in ("lean", "otel")}
    yield running
    for server in running.values():
        server.stop()


def shape(spans: list[Span], caller_span_id: str) -> list[tuple]:
    """Rows without ids, times and durations; parents named by the span they point to."""
    by_id = {s.span_id: s for s in spans}
    ignored = {"trace_id", "span_id", "parent_span_id", "start_time", "duration_ms", "exception_stack"}
    out = []
    for s in spans:
        if s.parent_span_id == caller_span_id:
            parent = "caller"
        else:
            p = by_id[s.parent_span_id]
            parent = (p.endpoint, p.kind)
        stack_tail = s.exception_stack.rstrip().splitlines()[-1] if s.exception_stack else None
        out.append((*(getattr(s, f) for f in SPAN_FIELDS if f not in ignored), parent, stack_tail))
    return sorted(out, key=repr)


def test_lean_and_otel_recorders_write_identical_rows(servers):
    http = requests.Session()
    lean = servers["lean"]
    assert http.post(lean.url + "/simulate/error?endpoint=inventory&rate=1", timeout=10).status_code == 200

    traces: dict[str, list] = {"lean": [], "otel": []}
    for phase in ("failing", "healthy"):
        if phase == "healthy":
            assert http.post(lean.url + "/simulate/clear", timeout=10).status_code == 200
        for kind, server in servers.items():
            trace_id, caller, header = traceparent()
            r = http.post(server.url + "/checkout", json={"amount": 5}, headers={"traceparent": header},
                          timeout=10)
            assert r.status_code == (502 if phase == "failing" else 200), r.text
            traces[kind].append((trace_id, caller))

    shapes = {}
    for kind, server in servers.items():
        shapes[kind] = []
        for trace_id, caller in traces[kind]:
            spans = stored(server.app, trace_id=trace_id)
            assert {s.trace_id for s in spans} == {trace_id}
            shapes[kind].append(shape(spans, caller))

    failing, healthy = shapes["lean"]
    assert shapes["otel"] == shapes["lean"]

    # And the rows are the right ones, not merely equal.
    # healthy: checkout, its two calls and their SERVER spans, and payment's and inventory's calls to
    # the external gateway (no SERVER span: nothing records it)
    assert len(healthy) == 7 and len(failing) == 3
    fields = [f for f in SPAN_FIELDS if f not in
              {"trace_id", "span_id", "parent_span_id", "start_time", "duration_ms", "exception_stack"}]
    names = [*fields, "parent", "stack_tail"]
    rows = [dict(zip(names, row, strict=True)) for row in failing]
    checkout = next(r for r in rows if r["endpoint"] == "checkout")
    call = next(r for r in rows if r["kind"] == KIND_CLIENT)
    inventory = next(r for r in rows if r["endpoint"] == "inventory" and r["kind"] == KIND_SERVER)
    assert (checkout["status_code"], checkout["error"], checkout["parent"]) == (502, True, "caller")
    assert checkout["exception_type"] == "werkzeug.exceptions.BadGateway"
    assert checkout["exception_message"] == "502 Bad Gateway: inventory answered 500"
    assert (call["peer"], call["status_code"], call["error"], call["parent"]) == (
        "shop", 500, True, ("checkout", KIND_SERVER))
    assert (inventory["status_code"], inventory["exception_type"], inventory["parent"]) == (
        500, "simulation.shop.InjectedFault", ("inventory", KIND_CLIENT))
    assert inventory["stack_tail"] == "simulation.shop.InjectedFault: injected error on inventory"
    healthy_rows = [dict(zip(names, row, strict=True)) for row in healthy]
    assert all(r["status_code"] == 200 and not r["error"] for r in healthy_rows)
    assert sorted((r["endpoint"], r["kind"]) for r in healthy_rows) == [
        ("charge", KIND_CLIENT), ("checkout", KIND_SERVER), ("inventory", KIND_SERVER),
        ("inventory", KIND_CLIENT), ("payment", KIND_SERVER), ("payment", KIND_CLIENT),
        ("stock", KIND_CLIENT),
    ]
    assert {r["peer"] for r in healthy_rows if r["endpoint"] in ("charge", "stock")} == {"gateway"}


# -- (e) recording off ---------------------------------------------------------


@pytest.mark.parametrize("recorder", ["lean", "otel"])
def test_record_requests_off_records_nothing(app_factory, recorder):
    app = app_factory(AIOPS_RECORD_REQUESTS=False, AIOPS_RECORDER=recorder)
    client = app.test_client()
    assert client.get("/health").status_code == 200
    assert client.post("/payment").status_code == 200
    assert client.get("/aiops/incidents").status_code == 200
    assert stored(app) == []
    assert app.extensions["aiops_buffer"].stats()["recorded"] == 0


def test_unknown_recorder_is_refused(db_url):
    with pytest.raises(ValueError, match="AIOPS_RECORDER"):
        make_app(db_url, AIOPS_RECORDER="fancy")


# -- (f) the span buffer -------------------------------------------------------

IDLE = 3600.0  # a flush interval long enough that only explicit flushes write


def test_buffer_drops_and_counts_beyond_max_size():
    written: list[tuple] = []
    buffer = SpanBuffer(written.extend, flush_interval=IDLE, max_size=3)
    for i in range(5):
        buffer.add((i,))  # never raises, never blocks
    assert buffer.stats() == {"recorded": 3, "written": 0, "pending": 3, "dropped": 2, "store_errors": 0}
    assert buffer.flush() == 3
    assert written == [(0,), (1,), (2,)]
    buffer.add((5,))  # room again after the flush
    assert buffer.flush() == 1 and buffer.stats()["dropped"] == 2


class FlakyStore:
    """A writer that fails while ``down``; records what it accepted."""

    def __init__(self):
        self.down = True
        self.rows: list[tuple] = []

    def __call__(self, rows):
        if self.down:
            raise ConnectionError("store unavailable")
        self.rows.extend(rows)


def test_buffer_keeps_failed_batches_and_retries_them_in_order():
    store = FlakyStore()
    buffer = SpanBuffer(store, flush_interval=IDLE, max_size=10)
    buffer.add(("a",))
    buffer.add(("b",))
    assert buffer.flush() == 0  # the failure does not escape
    buffer.add(("c",))
    assert buffer.flush() == 0
    assert buffer.stats()["store_errors"] == 2 and buffer.stats()["pending"] == 3
    store.down = False
    assert buffer.flush() == 3
    assert store.rows == [("a",), ("b",), ("c",)]
    assert buffer.stats() == {"recorded": 3, "written": 3, "pending": 0, "dropped": 0, "store_errors": 2}


def test_buffer_bound_includes_rows_waiting_for_a_retry():
    store = FlakyStore()
    buffer = SpanBuffer(store, flush_interval=IDLE, max_size=2)
    buffer.add((1,))
    buffer.add((2,))
    buffer.flush()
    buffer.add((3,))  # the two retained rows fill the buffer
    assert buffer.stats()["dropped"] == 1 and buffer.stats()["pending"] == 2
    store.down = False
    buffer.flush()
    assert store.rows == [(1,), (2,)]


def test_buffer_writes_on_its_own_thread():
    """Requests only queue; the writer thread (started on first use) does the I/O."""
    done = threading.Event()
    seen: list[tuple[str, list]] = []

    def writer(rows):
        seen.append((threading.current_thread().name, list(rows)))
        done.set()

    buffer = SpanBuffer(writer, flush_interval=0.01, max_size=10)
    buffer.add(("x",))
    assert done.wait(10), "the writer thread never flushed"
    assert seen[0] == ("aiops-span-writer", [("x",)])


def test_empty_flush_does_not_call_the_writer():
    calls = []
    buffer = SpanBuffer(calls.append, flush_interval=IDLE)
    assert buffer.flush() == 0 and calls == []


def test_row_tuples_match_the_table():
    """Both recorders hand the buffer tuples in SPAN_FIELDS order; the table has those columns."""
    assert set(SPAN_FIELDS) <= set(Span.__table__.columns.keys())
