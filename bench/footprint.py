"""Disk per stored span and log record: ``python bench/footprint.py [--database-url URL]``.

Stores ``--spans`` SDK-made spans (``bench/ingest.py``'s batches: HTTP and database attributes, a
few exception events, each batch with fresh trace ids and later times) and as many SDK-made log
records (``bench/ingest_logs.py``'s) through the product's own decoding, mapping and insert path
(``otlp.to_rows``, ``insert_spans``; ``otlp_logs.to_log_rows``, ``insert_logs``), then measures what
the tables and their indexes take: SQLite's pages per table (``dbstat``) after a checkpoint, or
PostgreSQL's ``pg_total_relation_size``. Prints bytes per span and per record, and what one GB
fills a day at a few steady rates: the figures ``docs/performance.md`` sizes a node with.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import database, print_table  # noqa: E402
from ingest import BATCH, Batches  # noqa: E402
from ingest_logs import LogBatches  # noqa: E402
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

RATES = (100, 1_000, 10_000)  # spans (or records) a second, steady


def fill(url: str, batches: int) -> dict[str, int]:
    """Store ``batches`` span batches and as many log batches; bytes per table (indexes included)."""
    from sqlalchemy import text

    from aiops.store.schema import ensure_schema
    from app import create_app
    from telemetry import otlp, otlp_logs
    from telemetry.db import db
    from telemetry.store import insert_logs, insert_spans

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "AIOPS_SCHEDULER": False,
                      "AIOPS_RECORD_REQUESTS": False, "AIOPS_NOTIFICATIONS": False})
    spans, logs = Batches(), LogBatches()
    with app.app_context():
        ensure_schema()
        engine = db.engine
        for k in range(batches):
            insert_spans(engine, otlp.to_rows(ExportTraceServiceRequest.FromString(spans.body(k))).rows)
            message = ExportLogsServiceRequest.FromString(logs.body(k))
            insert_logs(engine, otlp_logs.to_log_rows(message).rows)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                sizes = dict(conn.execute(text(
                    "SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s JOIN sqlite_master m ON s.name = m.name "
                    "WHERE m.tbl_name IN ('spans', 'logs') GROUP BY m.tbl_name")).all())
            else:
                conn.exec_driver_sql("VACUUM ANALYZE spans")
                conn.exec_driver_sql("VACUUM ANALYZE logs")
                sizes = {t: conn.execute(text(f"SELECT pg_total_relation_size('{t}')")).scalar()
                         for t in ("spans", "logs")}
            counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in ("spans", "logs")}
    return {t: (sizes[t], counts[t]) for t in ("spans", "logs")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=102_400, help="spans, and log records, to store")
    parser.add_argument("--database-url", default=None, help="PostgreSQL server (default: a SQLite file)")
    args = parser.parse_args()
    batches = max(1, args.spans // BATCH)
    with tempfile.TemporaryDirectory() as tmp, database("footprint", args.database_url, Path(tmp)) as url:
        measured = fill(url, batches)
    print(f"store: {'PostgreSQL' if args.database_url else 'SQLite'}; {batches} batches of {BATCH}")
    rows = []
    for table, (size, count) in measured.items():
        per = size / count
        per_day = [f"{per * rate * 86400 / 1e9:,.1f}" for rate in RATES]
        rows.append([table, f"{count:,}", f"{size / 1e6:,.1f}", f"{per:,.0f}", *per_day])
    print_table(["table", "rows", "MB", "bytes per row", *(f"GB a day at {r:,}/s" for r in RATES)], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
