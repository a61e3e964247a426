"""OTLP/HTTP log ingest rate against a live server: ``python bench/ingest_logs.py``.

Measures log records *stored* per second through ``POST /v1/logs``
(protobuf, 512-record batches, as the SDK's ``BatchLogRecordProcessor``
sends them) on a real gunicorn on loopback with SQLite, and in the same run,
alternating rounds, the span rate of ``POST /v1/traces`` with
``bench/ingest.py``'s batches into the same server: the two signals side by
side on this machine.

The log batches are made by the real SDK (``logging`` through the official
bridge, with trace context, an exception now and then) and encoded by the OTLP
exporter's own encoder; each batch gets fresh trace ids and later times.
A batch counts once the server answered 200 (the route commits before it
answers); stored rows are checked against acknowledged ones at the end.

Target (issue 12): >= 50,000 log records/s stored, none lost.

Options: ``--seconds`` per round (10), ``--rounds`` (3), ``--clients`` (4),
``--workers`` gunicorn workers (CPU count), ``--threads`` per worker (4),
``--database-url`` a PostgreSQL server (a fresh database there, dropped after; default SQLite).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import GunicornServer, cpu_count, database, print_table, process_tree_cpu, verdict  # noqa: E402
from ingest import BATCH, Batches, post_batches, rate_arguments, stored  # noqa: E402
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs  # noqa: E402
from opentelemetry.instrumentation.logging.handler import LoggingHandler  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402

TARGET = 50_000


def _sdk_logs(count: int) -> list:
    """``count`` SDK log records of a service, logged inside spans, a few with an exception."""
    resource = Resource.create({"service.name": "orders", "k8s.pod.name": "orders-5c7d9-x2"})
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("bench.orders")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(LoggingHandler(logger_provider=provider, log_code_attributes=True))
    tracer = TracerProvider(resource=resource).get_tracer("bench")
    for i in range(count):
        with tracer.start_as_current_span("GET /orders/{id}"):
            if i % 50 == 0:
                try:
                    raise TimeoutError("canceling statement due to statement timeout")
                except TimeoutError:
                    logger.exception("query for user %d failed after %d ms", i, 5000)
            else:
                logger.info("order %d loaded for user %d in %d ms (%d items)", i * 7, i, 3 + i % 20, i % 9)
    return exporter.get_finished_logs()[:count]


class LogBatches:
    """Protobuf ``ExportLogsServiceRequest`` bodies of ``BATCH`` records; batch ``k`` has fresh trace
    ids and its times moved ``k`` periods later (the time index appends, as with live traffic)."""

    def __init__(self) -> None:
        self.template = encode_logs(_sdk_logs(BATCH))
        times = [r.time_unix_nano for r in self._records(self.template)]
        self.period = max(times) - min(times) + 1_000_000

    @staticmethod
    def _records(message) -> list:
        return [r for rl in message.resource_logs for sl in rl.scope_logs for r in sl.log_records]

    def body(self, k: int) -> bytes:
        message = type(self.template)()
        message.CopyFrom(self.template)
        salt = k.to_bytes(8, "little")
        for record in self._records(message):
            record.time_unix_nano += k * self.period
            record.observed_time_unix_nano += k * self.period
            record.trace_id = hashlib.blake2b(record.trace_id + salt, digest_size=16).digest()
        return message.SerializeToString()


def main() -> int:
    args = rate_arguments(__doc__)
    if args.instances != 1:
        raise SystemExit("--instances: only bench/ingest.py spreads its clients over several instances")

    print(f"making {BATCH}-record log batches and {BATCH}-span trace batches with the SDK ...", flush=True)
    logs, spans = LogBatches(), Batches()
    print(f"  {len(logs.body(0)) / 1024:.0f} KiB per log batch")
    with tempfile.TemporaryDirectory(prefix="aiops-bench-ingest-logs-") as tmp, \
            database("ingest_logs", args.database_url, Path(tmp)) as url:
        env = {"AIOPS_DATABASE_URL": url, "AIOPS_SCHEDULER": "0",
               "AIOPS_OTLP_MAX_AGE": str(10 * 365 * 86400), "AIOPS_OTLP_MAX_AHEAD": str(10 * 365 * 86400)}
        server = GunicornServer(env, workers=args.workers, threads=args.threads, log_path=Path(tmp) / "g.log")
        print(f"gunicorn: {args.workers} workers x {args.threads} threads; {args.clients} clients; "
              f"{args.rounds} rounds of {args.seconds:g}s per signal; {cpu_count()} CPUs; "
              f"{'PostgreSQL' if args.database_url else 'SQLite'}", flush=True)
        table, totals = [], {"logs": [0, 0.0, 0.0], "spans": [0, 0.0, 0.0]}
        k_logs = k_spans = failures = 0
        with server:
            ok, bad, _, k_logs = post_batches(server.port, logs, k_logs, args.clients, 1.0, "/v1/logs")
            warm_logs = stored(url, "logs")
            failures += bad
            ok, bad, _, k_spans = post_batches(server.port, spans, k_spans, args.clients, 1.0)
            warm_spans = stored(url, "spans")
            failures += bad
            for n in range(1, args.rounds + 1):
                row = [n]
                for name, batches, path in (("logs", logs, "/v1/logs"), ("spans", spans, "/v1/traces")):
                    cpu0 = process_tree_cpu(server.proc.pid)
                    first = k_logs if name == "logs" else k_spans
                    ok, bad, secs, nxt = post_batches(server.port, batches, first, args.clients,
                                                      args.seconds, path)
                    cpu = (process_tree_cpu(server.proc.pid) or 0.0) - (cpu0 or 0.0)
                    if name == "logs":
                        k_logs = nxt
                    else:
                        k_spans = nxt
                    failures += bad
                    totals[name][0] += ok * BATCH
                    totals[name][1] += secs
                    totals[name][2] += cpu
                    row += [f"{ok * BATCH / secs:,.0f}", f"{cpu / (ok * BATCH) * 1e6:.1f}"]
                print(f"  round {n}: {row[1]} log records/s, {row[3]} spans/s", flush=True)
                table.append(row)
            stored_logs = stored(url, "logs") - warm_logs
            stored_spans = stored(url, "spans") - warm_spans

    rate = {name: t[0] / t[1] for name, t in totals.items()}
    print()
    print_table(["round", "log records/s", "server CPU us/record", "spans/s", "server CPU us/span"],
                [*table, ["all", f"{rate['logs']:,.0f}", f"{totals['logs'][2] / totals['logs'][0] * 1e6:.1f}",
                          f"{rate['spans']:,.0f}", f"{totals['spans'][2] / totals['spans'][0] * 1e6:.1f}"]])
    print()
    print(f"acknowledged {totals['logs'][0]:,} log records, stored {stored_logs:,}; "
          f"acknowledged {totals['spans'][0]:,} spans, stored {stored_spans:,}; failed requests {failures}")
    if stored_logs != totals["logs"][0] or stored_spans != totals["spans"][0] or failures:
        print("ERROR: the server did not store exactly what it acknowledged")
        return 1
    print(f"log records/spans ratio: {rate['logs'] / rate['spans']:.2f}")
    print(f"target >= {TARGET:,} log records/s: {verdict(rate['logs'] >= TARGET)} ({rate['logs']:,.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
