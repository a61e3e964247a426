"""OTLP/HTTP ingest rate against a live server: ``python bench/ingest.py``.

Measures spans *stored* per second through ``POST /v1/traces`` (protobuf,
512-span batches, as the OpenTelemetry SDK's ``BatchSpanProcessor`` sends
them) on a real gunicorn on loopback with SQLite, and in the same run the
rate of a plain ``sqlite3`` ``executemany`` of the very same rows into the
same schema (same indexes, same pragmas, one transaction per 512 rows): what
this machine's disk and SQLite build allow a plain batched insert. Rounds
alternate the two, and the raw insert writes as many batches as the server
stored in that round, so both tables grow alike. The server's CPU time
(all gunicorn processes, from ``/proc``) is shown too: CPUs busy and CPU per
span tell whether the server was short of CPU or waiting (for SQLite's one
write lock).

The batches are made by the real SDK (spans of a two-service app with HTTP
and database attributes, a few exception events) and encoded by the OTLP
exporter's own encoder; each batch gets fresh trace ids and later times, so
the trace index sees new keys and the time index appends, as with live
traffic. Client threads post them back to back over keep-alive connections
(bodies made before the clock starts); a batch counts once the server
answered 200 (the ingest route commits before it answers), and the stored
row count is checked against the acknowledged one at the end.

Target (the issue "Fast enough to leave on"): >= 50,000 spans/s on SQLite.

Options: ``--seconds`` per round (10), ``--rounds`` (3), ``--clients``
concurrent connections (4), ``--workers`` gunicorn workers (CPU count),
``--threads`` per worker (4), ``--database-url`` a PostgreSQL server
(``postgresql+psycopg://postgres@127.0.0.1:5432/aiops_bench``: the server
stores into a fresh database there, dropped after; no raw baseline then),
``--instances N`` with it: N gunicorn instances share that database, as
several product instances behind a load balancer do, the clients spread
over them (the workers default to the CPU count divided among them).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import itertools
import random
import re
import sqlite3
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import GunicornServer, cpu_count, database, print_table, process_tree_cpu, verdict  # noqa: E402
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


class Batches:
    """Protobuf ``ExportTraceServiceRequest`` bodies of ``BATCH`` spans; :meth:`body` makes the k-th.

    Two SDK-made templates (one per service) are patched in place, byte for
    byte: batch ``k`` gets fresh trace ids (a hash of the old id and ``k``) and
    its times moved ``k`` periods later, so the stored times keep growing as
    live traffic's do and the trace index gets new random keys. (Posting the
    same few bodies over and over would turn the time index's appends into
    random inserts and cost the database several times more than real traffic.)
    Patching costs the client well under a millisecond per batch.
    """

    def __init__(self) -> None:
        messages = [encode_spans(_sdk_spans(service, BATCH)) for service in ("frontend", "orders")]
        starts = [s.start_time_unix_nano for m in messages for s in self._spans(m)]
        ends = [s.end_time_unix_nano for m in messages for s in self._spans(m)]
        self.period = max(ends) - min(starts) + 1_000_000
        self.templates = []
        for message in messages:
            body = message.SerializeToString()
            trace_offsets: dict[bytes, list[int]] = {}
            time_offsets: list[tuple[int, int]] = []
            for span in self._spans(message):
                trace_offsets.setdefault(span.trace_id, [])
                for tag, value in ((b"\x39", span.start_time_unix_nano), (b"\x41", span.end_time_unix_nano)):
                    time_offsets += [(m.start() + 1, value) for m in
                                     re.finditer(re.escape(tag + struct.pack("<Q", value)), body)]
            for trace_id, offsets in trace_offsets.items():
                offsets += [m.start() + 2 for m in re.finditer(re.escape(b"\x0a\x10" + trace_id), body)]
            self.templates.append((body, trace_offsets, sorted(set(time_offsets))))
        check = ExportTraceServiceRequest.FromString(self.body(3))
        assert [s.start_time_unix_nano for s in self._spans(check)] == [
            s.start_time_unix_nano + 3 * self.period for s in self._spans(messages[1])]
        assert not {s.trace_id for s in self._spans(check)} & {s.trace_id for s in self._spans(messages[1])}

    @staticmethod
    def _spans(message: ExportTraceServiceRequest) -> list:
        return [span for rs in message.resource_spans for ss in rs.scope_spans for span in ss.spans]

    def body(self, k: int) -> bytes:
        template, trace_offsets, time_offsets = self.templates[k % len(self.templates)]
        out = bytearray(template)
        salt = k.to_bytes(8, "little")
        for trace_id, offsets in trace_offsets.items():
            new = hashlib.blake2b(trace_id + salt, digest_size=16).digest()
            for at in offsets:
                out[at : at + 16] = new
        delta = k * self.period
        for at, value in time_offsets:
            struct.pack_into("<Q", out, at, value + delta)
        return bytes(out)


# -- the live server --------------------------------------------------------------------


def post_batches(port: int | list[int], batches: Batches, first: int, clients: int,
                 seconds: float, path: str = "/v1/traces") -> tuple[int, int, float, int]:
    """Post batches ``first``, ``first + 1`` ... from ``clients`` keep-alive connections for ``seconds``
    (to ``port``, or spread over several instances' ports: client ``i`` posts to ``port[i % n]``).

    Returns (batches answered 200, other answers, elapsed seconds, the next
    batch number). ``path``: ``/v1/traces``, or ``/v1/logs`` for bench/ingest_logs.py.
    The bodies are made before the clock starts (up to 100,000
    spans/s worth), so the client takes little of the CPU the server needs.
    """
    ready = [batches.body(k) for k in range(first, first + int(seconds * 100_000 / BATCH) + clients)]
    counter = itertools.count(first)

    def body(k: int) -> bytes:
        return ready[k - first] if k - first < len(ready) else batches.body(k)

    ok = [0] * clients
    failed = [0] * clients
    headers = {"Content-Type": "application/x-protobuf"}
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    ports = port if isinstance(port, list) else [port]

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ports[i % len(ports)], timeout=60)
        start.wait()
        while time.perf_counter() < stop_at[0]:
            conn.request("POST", path, body=body(next(counter)), headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                ok[i] += 1
            else:
                failed[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    start.wait()
    for t in threads:
        t.join()
    return sum(ok), sum(failed), time.perf_counter() - t0, next(counter)


def stored(url: str, table: str = "spans") -> int:
    """Rows of ``table`` in the server's database but the server's own (its requests, its logs)."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(f"SELECT count(*) FROM {table} WHERE service != 'aiops'").scalar()
    finally:
        engine.dispose()


# -- the raw baseline ---------------------------------------------------------------------


class RawInsert:
    """``sqlite3.executemany`` of the same rows into the same schema, one transaction per batch.

    Same table and indexes (created from the model), same connection pragmas
    as the server's; the rows are decoded from the same bodies outside the
    timed part, so only the database's own work is timed.
    """

    def __init__(self, db_file: Path, batches: Batches):
        from sqlalchemy import create_engine

        from telemetry.columns import SPAN_FIELDS
        from telemetry.db import SQLITE_PRAGMAS, configure_engine
        from telemetry.models import Span

        engine = create_engine(f"sqlite:///{db_file}")
        configure_engine(engine)
        Span.__table__.create(engine)
        engine.dispose()
        self.conn = sqlite3.connect(db_file, isolation_level=None)
        for pragma in SQLITE_PRAGMAS:
            self.conn.execute(f"PRAGMA {pragma}")
        marks = ", ".join("?" * len(SPAN_FIELDS))
        self.sql = f"INSERT INTO spans ({', '.join(SPAN_FIELDS)}) VALUES ({marks})"
        self.batches = batches
        self.counter = itertools.count()

    def run(self, count: int) -> float:
        """Insert ``count`` batches; the seconds spent in the database."""
        from telemetry import otlp

        spent = 0.0
        for _ in range(count):
            rows = otlp.to_rows(otlp.parse(self.batches.body(next(self.counter)), otlp.PROTOBUF)).rows
            t0 = time.perf_counter()
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(self.sql, rows)
            self.conn.execute("COMMIT")
            spent += time.perf_counter() - t0
        return spent


def servers_cpu(servers: list) -> float:
    """CPU seconds used so far by every process of ``servers`` (nan where /proc does not say)."""
    used = [process_tree_cpu(server.proc.pid) for server in servers]
    return float("nan") if None in used else sum(used)


def rate_arguments(doc: str) -> argparse.Namespace:
    """The options both ingest benches take (round length, rounds, clients, gunicorn workers and
    threads, the database)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers per instance "
                        "(default: the CPU count shared by the instances)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database-url", help="postgresql+psycopg://postgres@127.0.0.1:5432/NAME: the "
                        "server stores into a fresh database on that server (dropped after); default SQLite")
    parser.add_argument("--instances", type=int, default=1, help="gunicorn instances sharing the database "
                        "(PostgreSQL only), the clients spread over them")
    args = parser.parse_args()
    if args.instances < 1 or (args.instances > 1 and not args.database_url):
        parser.error("--instances above 1 needs --database-url (several instances share PostgreSQL)")
    if args.workers is None:
        args.workers = max(1, cpu_count() // args.instances)
    return args


def main() -> int:
    args = rate_arguments(__doc__)

    print(f"making {BATCH}-span protobuf batches with the OpenTelemetry SDK ...", flush=True)
    batches = Batches()
    print(f"  {len(batches.templates[0][0]) / 1024:.0f} KiB per batch")

    with tempfile.TemporaryDirectory(prefix="aiops-bench-ingest-") as tmp, \
            database("ingest", args.database_url, Path(tmp)) as url:
        tmp_path = Path(tmp)
        # The raw baseline is SQLite's: on PostgreSQL the server's rate is shown alone.
        raw = None if args.database_url else RawInsert(tmp_path / "raw.db", batches)
        env = {"AIOPS_DATABASE_URL": url, "AIOPS_SCHEDULER": "0"}
        servers = [GunicornServer(env, workers=args.workers, threads=args.threads,
                                  log_path=tmp_path / f"gunicorn-{i}.log") for i in range(args.instances)]
        ports = [server.port for server in servers]
        print(f"gunicorn: {args.instances} instance(s) of {args.workers} gthread workers x {args.threads} "
              f"threads on {', '.join(server.url for server in servers)}; {args.clients} client connections; "
              f"{args.rounds} rounds of {args.seconds:g}s; {cpu_count()} CPUs; "
              f"{'PostgreSQL' if args.database_url else 'SQLite'}", flush=True)
        k = 0
        table = []
        total_ok = total_live_s = total_raw_s = total_cpu = 0.0
        failures = 0
        with contextlib.ExitStack() as running:
            for server in servers:
                running.enter_context(server)
            warm_ok, warm_failed, _, k = post_batches(ports, batches, k, args.clients, 1.0)
            if raw:
                raw.run(warm_ok)  # both tables start alike
            failures += warm_failed
            warm = stored(url)
            for n in range(1, args.rounds + 1):
                cpu0 = servers_cpu(servers)
                ok, failed, live_s, k = post_batches(ports, batches, k, args.clients, args.seconds)
                cpu = servers_cpu(servers) - cpu0
                raw_s = raw.run(ok) if raw else float("nan")
                live_rate, raw_rate = ok * BATCH / live_s, ok * BATCH / raw_s
                table.append([n, f"{live_rate:,.0f}", f"{raw_rate:,.0f}", f"{live_rate / raw_rate:.2f}",
                              f"{cpu / live_s:.2f}", f"{cpu / (ok * BATCH) * 1e6:.1f}"])
                print(f"  round {n}: ingest {live_rate:,.0f} spans/s, raw {raw_rate:,.0f} rows/s", flush=True)
                total_ok += ok
                total_live_s += live_s
                total_raw_s += raw_s
                total_cpu += cpu
                failures += failed
            stored_now = stored(url) - warm
        acked = int(total_ok * BATCH)

    live, ceiling = acked / total_live_s, acked / total_raw_s
    print()
    print_table(["round", "OTLP ingest spans/s", "raw executemany rows/s", "ratio", "server CPUs busy",
                 "server CPU us/span"],
                [*table, ["all", f"{live:,.0f}", f"{ceiling:,.0f}", f"{live / ceiling:.2f}",
                          f"{total_cpu / total_live_s:.2f}", f"{total_cpu / acked * 1e6:.1f}"]])
    print()
    print(f"acknowledged {acked:,} spans, stored {stored_now:,}, failed requests {failures}")
    if stored_now != acked or failures:
        print("ERROR: the server did not store exactly what it acknowledged")
        return 1
    if not args.database_url:
        print(f"ratio ingest/raw: {live / ceiling:.2f}")
    print(f"target >= {TARGET:,} spans/s: {verdict(live >= TARGET)} ({live:,.0f} spans/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
