"""OTLP/HTTP ingest rate against a live server: ``python bench/ingest.py``.

Measures spans *stored* per second through ``POST /v1/traces`` (protobuf,
512-span batches, as the OpenTelemetry SDK's ``BatchSpanProcessor`` sends
them) on a real gunicorn on loopback with SQLite, and in the same run the
rate of a plain ``sqlite3`` ``executemany`` of the very same rows into the
same schema (same indexes, same pragmas, one transaction per 512 rows): the
ceiling for this machine's disk and SQLite build. Rounds alternate the two,
and the raw insert writes as many batches as the server stored in that round,
so both tables grow alike.

The batches are made by the real SDK (spans of a two-service app with HTTP
and database attributes, a few exception events) and encoded by the OTLP
exporter's own encoder; ids are re-drawn per batch so the trace index sees
fresh keys. Client threads post them back to back over keep-alive
connections; a batch counts once the server answered 200 (the ingest route
commits before it answers) and the stored row count is checked at the end.

Target (the issue "Fast enough to leave on"): >= 50,000 spans/s on SQLite.

Options: ``--seconds`` per round (10), ``--rounds`` (3), ``--clients``
concurrent connections (4), ``--workers`` gunicorn workers (CPU count),
``--threads`` per worker (4).
"""

from __future__ import annotations

import argparse
import http.client
import random
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import GunicornServer, cpu_count, print_table, verdict  # noqa: E402

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: E402

TARGET = 50_000
BATCH = 512
ROUTES = ("/orders/{id}", "/orders", "/cart", "/users/{id}", "/search", "/checkout")


# -- realistic batches ----------------------------------------------------------------


def _sdk_spans(service: str, count: int) -> list:
    """``count`` finished SDK spans of ``service``: SERVER requests with child CLIENT/INTERNAL work."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service, "host.name": "bench-1"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench.ingest", "1.0")
    rnd = random.Random(service)
    while len(exporter.get_finished_spans()) < count:
        route = rnd.choice(ROUTES)
        status = 500 if rnd.random() < 0.02 else 200
        with tracer.start_as_current_span(f"GET {route}", kind=SpanKind.SERVER, attributes={
            "http.request.method": "GET", "http.route": route, "url.path": route.replace("{id}", "42"),
            "url.scheme": "http", "server.address": service, "server.port": 8080,
            "user_agent.original": "python-requests/2.32", "http.response.status_code": status,
        }) as server:
            with tracer.start_as_current_span("SELECT shop.orders", kind=SpanKind.CLIENT, attributes={
                "db.system": "postgresql", "db.name": "shop", "server.address": "db",
                "db.statement": "SELECT id, total, status FROM orders WHERE user_id = %s LIMIT 50",
            }) as query:
                if status == 500:
                    try:
                        raise TimeoutError("canceling statement due to statement timeout")
                    except TimeoutError as exc:
                        query.record_exception(exc)
                        query.set_status(Status(StatusCode.ERROR))
            with tracer.start_as_current_span("render", kind=SpanKind.INTERNAL, attributes={"items": 7}):
                pass
            with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes={
                "http.request.method": "POST", "server.address": "payments", "peer.service": "payments",
                "url.full": "http://payments:8080/charge", "http.response.status_code": 200,
            }):
                pass
            if status == 500:
                server.set_status(Status(StatusCode.ERROR))
    return list(exporter.get_finished_spans())[:count]


def make_batches(count: int) -> list[bytes]:
    """``count`` protobuf ``ExportTraceServiceRequest`` bodies of ``BATCH`` spans each."""
    templates = [encode_spans(_sdk_spans(service, BATCH)) for service in ("frontend", "orders")]
    rnd = random.Random(7)
    bodies = []
    for n in range(count):
        message = ExportTraceServiceRequest()
        message.CopyFrom(templates[n % len(templates)])
        traces: dict[bytes, bytes] = {}
        spans: dict[bytes, bytes] = {}
        for rs in message.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.trace_id = traces.setdefault(span.trace_id, rnd.randbytes(16))
                    span.span_id = spans.setdefault(span.span_id, rnd.randbytes(8))
                    if span.parent_span_id:
                        span.parent_span_id = spans.setdefault(span.parent_span_id, rnd.randbytes(8))
        bodies.append(message.SerializeToString())
    return bodies


# -- the live server --------------------------------------------------------------------


def post_batches(port: int, bodies: list[bytes], clients: int, seconds: float) -> tuple[int, int, float]:
    """Post batches from ``clients`` keep-alive connections for ``seconds``: (batches ok, failed, elapsed)."""
    ok = [0] * clients
    failed = [0] * clients
    headers = {"Content-Type": "application/x-protobuf"}
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        n = i
        start.wait()
        while time.perf_counter() < stop_at[0]:
            conn.request("POST", "/v1/traces", body=bodies[n % len(bodies)], headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                ok[i] += 1
            else:
                failed[i] += 1
            n += clients
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    start.wait()
    for t in threads:
        t.join()
    return sum(ok), sum(failed), time.perf_counter() - t0


def stored_spans(db_file: Path) -> int:
    with sqlite3.connect(db_file) as conn:
        return conn.execute("SELECT count(*) FROM spans WHERE service != 'aiops'").fetchone()[0]


# -- the raw baseline ---------------------------------------------------------------------


class RawInsert:
    """``sqlite3.executemany`` of the same rows into the same schema, one transaction per batch."""

    def __init__(self, db_file: Path, batches_rows: list[list[tuple]]):
        from sqlalchemy import create_engine

        from telemetry.db import configure_engine
        from telemetry.models import SPAN_FIELDS, Span

        engine = create_engine(f"sqlite:///{db_file}")
        configure_engine(engine)  # the same pragmas as the server (WAL, synchronous=NORMAL)
        Span.__table__.create(engine)  # the same table and indexes
        engine.dispose()
        self.conn = sqlite3.connect(db_file, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.sql = f"INSERT INTO spans ({', '.join(SPAN_FIELDS)}) VALUES ({', '.join('?' * len(SPAN_FIELDS))})"
        self.batches = batches_rows
        self.next = 0

    def run(self, batches: int) -> float:
        """Insert ``batches`` batches; the elapsed seconds."""
        t0 = time.perf_counter()
        for _ in range(batches):
            rows = self.batches[self.next % len(self.batches)]
            self.next += 1
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(self.sql, rows)
            self.conn.execute("COMMIT")
        return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=cpu_count())
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    from telemetry import otlp

    print(f"making {BATCH}-span protobuf batches with the OpenTelemetry SDK ...", flush=True)
    bodies = make_batches(200)
    rows = [otlp.to_rows(otlp.parse(b, otlp.PROTOBUF)).rows for b in bodies]
    assert all(len(r) == BATCH for r in rows)
    print(f"  {len(bodies)} batches, {sum(map(len, bodies)) / len(bodies) / 1024:.0f} KiB each")

    with tempfile.TemporaryDirectory(prefix="aiops-bench-ingest-") as tmp:
        tmp_path = Path(tmp)
        server_db = tmp_path / "server.db"
        raw = RawInsert(tmp_path / "raw.db", rows)
        env = {"AIOPS_DATABASE_URL": f"sqlite:///{server_db}", "AIOPS_SCHEDULER": "0"}
        server = GunicornServer(env, workers=args.workers, threads=args.threads,
                                log_path=tmp_path / "gunicorn.log")
        print(f"gunicorn: {args.workers} gthread workers x {args.threads} threads on {server.url}; "
              f"{args.clients} client connections; {args.rounds} rounds of {args.seconds:g}s; "
              f"{cpu_count()} CPUs", flush=True)
        table = []
        total_ok = total_live_s = total_raw_s = 0.0
        failures = 0
        with server:
            post_batches(server.port, bodies[:8], args.clients, 1.0)  # warm up (schema, imports)
            raw.run(8)
            warm = stored_spans(server_db)
            for n in range(1, args.rounds + 1):
                ok, failed, live_s = post_batches(server.port, bodies, args.clients, args.seconds)
                raw_s = raw.run(ok)
                live_rate, raw_rate = ok * BATCH / live_s, ok * BATCH / raw_s
                table.append([n, f"{live_rate:,.0f}", f"{raw_rate:,.0f}", f"{live_rate / raw_rate:.2f}"])
                print(f"  round {n}: ingest {live_rate:,.0f} spans/s, raw {raw_rate:,.0f} rows/s", flush=True)
                total_ok += ok
                total_live_s += live_s
                total_raw_s += raw_s
                failures += failed
            stored = stored_spans(server_db) - warm
        acked = int(total_ok * BATCH)

    live, ceiling = acked / total_live_s, acked / total_raw_s
    print()
    print_table(["round", "OTLP ingest spans/s", "raw executemany rows/s", "ratio"],
                [*table, ["all", f"{live:,.0f}", f"{ceiling:,.0f}", f"{live / ceiling:.2f}"]])
    print()
    print(f"acknowledged {acked:,} spans, stored {stored:,}, failed requests {failures}")
    if stored != acked or failures:
        print("ERROR: the server did not store exactly what it acknowledged")
        return 1
    print(f"ratio ingest/raw: {live / ceiling:.2f}")
    print(f"target >= {TARGET:,} spans/s: {verdict(live >= TARGET)} ({live:,.0f} spans/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
