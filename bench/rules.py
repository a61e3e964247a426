"""Trace-query rule evaluation over a large span store: ``python bench/rules.py``.

Builds a store of ``--spans`` synthetic spans (1,000,000; the traces of ``bench/detect.py``: five
spans each over 20 services, here spread evenly over the last ``--hours`` hours, 1) in which 2 % of
the traces failed (their deepest span raised) and 1 % are slow (every span 20x longer), then times
the evaluation of one rule of each built-in kind and of a free query, each over a 60 s window ending
at the newest span:

- ``high_latency``: ``{ duration > 500ms }``, count > 0;
- ``error_status``: ``{ status = error }``, count > 0;
- ``high_error_rate``: ``{ status = error }``, rate > 1 %;
- ``query``: ``{ resource.service.name = "svc03" && kind = server }``, p95 > 100 ms (no column
  filter narrows it to the failed or slow traces: every trace through svc03 is a candidate).

Two figures per rule: ``read`` is :func:`aiops.rules.evaluation.evaluate` alone (the SQL and the
query over the candidate traces); ``pass`` is a whole claimed evaluation as the worker runs it
(claim, read, record, and the alert and its outbox row when it is new). The target is <= 100 ms per
rule. What a rule reads is bounded by its window and by the candidate traces (at most 2,000), not by
the history: the table also shows the spans and traces in the window.

The store is SQLite by default (a temporary file, loaded with raw ``executemany`` with the indexes
dropped and rebuilt, as ``bench/detect.py`` does), or a fresh database on the PostgreSQL server of
``--database-url`` (loaded with ``COPY``; dropped after). ``--rounds`` (5) alternates the rules.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bulk_load, database, median, print_table, span_insert_sql, verdict  # noqa: E402
from detect import SPANS_PER_TRACE, TraceMaker  # noqa: E402

TARGET_MS = 100.0
WINDOW_S = 60.0
FAILED, SLOW = 0.02, 0.01  # shares of traces
RULES = [
    {"name": "high_latency", "kind": "high_latency", "query": "{ duration > 500ms }"},
    {"name": "error_status", "kind": "error_status"},
    {"name": "high_error_rate", "kind": "high_error_rate", "threshold": 0.01},
    {"name": "query (p95)", "kind": "query", "query": '{ resource.service.name = "svc03" && kind = server }',
     "aggregation": "p95", "threshold": 100},
]


def traces(maker: TraceMaker, count: int, t0: float, rate: float, rnd: random.Random) -> list[tuple]:
    """``count`` spans from ``t0`` at ``rate`` a second; some traces failed, some slow."""
    rows = maker.spans(count, t0, rate)
    out: list[tuple] = []
    for at in range(0, len(rows), SPANS_PER_TRACE):
        trace = [list(r) for r in rows[at: at + SPANS_PER_TRACE]]
        draw = rnd.random()
        if draw < FAILED:
            last = trace[-1]  # the deepest SERVER span raised; its caller's CLIENT span failed too
            last[7], last[8], last[12], last[13] = 500, True, "TimeoutError", "upstream timed out"
            trace[-2][7], trace[-2][8] = 500, True
        elif draw < FAILED + SLOW:
            for span in trace:
                span[10] *= 20
        out += [tuple(s) for s in trace]
    return out


def load_sqlite(path: str, batches) -> None:
    sql = span_insert_sql()
    bulk_load(path, ("spans",), lambda conn: [conn.executemany(sql, rows) for rows in batches])


def load_postgres(engine, batches) -> None:
    from telemetry.columns import SPAN_COLUMNS as SPAN_FIELDS  # TraceMaker's rows carry no attributes

    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            with cur.copy(f"COPY spans ({', '.join(SPAN_FIELDS)}) FROM STDIN") as copy:
                for rows in batches:
                    for row in rows:
                        copy.write_row(row)
        raw.commit()
        with raw.cursor() as cur:
            cur.execute("ANALYZE spans")
        raw.commit()
    finally:
        raw.close()


def build(url: str, spans: int, hours: float):
    """An app on ``url`` with the schema and ``spans`` spans ending now; (app, the newest start)."""
    from aiops.store.schema import ensure_schema
    from app import create_app
    from telemetry.db import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "AIOPS_SCHEDULER": False,
                      "AIOPS_RECORD_REQUESTS": False, "AIOPS_NOTIFICATIONS": False})
    with app.app_context():
        ensure_schema()
        engine = db.engine
    rate = spans / (hours * 3600)
    t0 = time.time() - hours * 3600
    maker, rnd, step = TraceMaker(1), random.Random(7), 100_000

    def batches():
        for done in range(0, spans, step):
            n = min(step, spans - done)
            yield traces(maker, n, t0 + done / rate, rate, rnd)

    if url.startswith("sqlite"):
        load_sqlite(url.removeprefix("sqlite:///"), batches())
    else:
        load_postgres(engine, batches())
    return app, t0 + spans / rate


def window_size(now: float) -> tuple[int, int]:
    from sqlalchemy import func, select

    from telemetry.db import db
    from telemetry.models import Span

    start = now - WINDOW_S
    row = db.session.execute(select(func.count(), func.count(func.distinct(Span.trace_id)))
                             .where(Span.start_time >= start, Span.start_time <= now)).one()
    db.session.rollback()
    return row[0], row[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--hours", type=float, default=1.0, help="the history's time span (1 hour)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", help="postgresql+psycopg://postgres@127.0.0.1:5432/NAME: a fresh "
                        "database NAME_rules_<pid> (default: a SQLite file)")
    args = parser.parse_args()

    from aiops.rules import evaluation, service
    from aiops.settings import settings_of
    from telemetry.db import db

    with tempfile.TemporaryDirectory(prefix="aiops-bench-rules-") as tmp, \
            database("rules", args.database_url, Path(tmp)) as url:
        t = time.perf_counter()
        app, now = build(url, args.spans, args.hours)
        backend = "PostgreSQL" if args.database_url else "SQLite"
        took = time.perf_counter() - t
        print(f"{backend} store: {args.spans:,} spans over {args.hours:g} h in {took:.1f} s", flush=True)
        settings = settings_of(app)
        read: dict[str, list[float]] = {r["name"]: [] for r in RULES}
        passes: dict[str, list[float]] = {r["name"]: [] for r in RULES}
        notes: dict[str, str] = {}
        with app.app_context():
            ids = {r["name"]: service.create(r, now).id for r in RULES}
            spans_in, traces_in = window_size(now)
            for n in range(args.rounds):
                for body in RULES:
                    rule_id = ids[body["name"]]
                    rule = service.get(rule_id)
                    t = time.perf_counter()
                    outcome = evaluation.evaluate(rule, now)
                    read[body["name"]].append((time.perf_counter() - t) * 1000)
                    db.session.rollback()
                    t = time.perf_counter()
                    at = now + n * 0.001  # a claimed pass: claim, read, record (and the alert when new)
                    assert evaluation.claim(rule_id, at, settings.rules_interval, force=True)
                    outcome = evaluation.evaluate(service.get(rule_id), at)
                    db.session.rollback()
                    evaluation.record(rule_id, outcome, None, at, settings)
                    passes[body["name"]].append((time.perf_counter() - t) * 1000)
                    value = "none" if outcome.value is None else f"{outcome.value:.4g}"
                    notes[body["name"]] = (f"{len(outcome.matched)} traces matched, value {value}, "
                                           f"{'fires' if outcome.fires else 'quiet'}")
                print(f"  round {n + 1}: " + ", ".join(f"{read[r['name']][-1]:.0f}" for r in RULES) + " ms",
                      flush=True)
            db.session.remove()
            db.engine.dispose()  # before the database is dropped
    print()
    print(f"window {WINDOW_S:g} s: {spans_in:,} spans, {traces_in:,} traces "
          f"({args.spans:,} stored over {args.hours:g} h)")
    print_table(["rule", "read median ms", "min", "max", "pass median ms", "last evaluation"],
                [[r["name"], f"{median(read[r['name']]):.1f}", f"{min(read[r['name']]):.1f}",
                  f"{max(read[r['name']]):.1f}", f"{median(passes[r['name']]):.1f}", notes[r["name"]]]
                 for r in RULES])
    worst = max(median(v) for v in passes.values())
    print(f"\ntarget <= {TARGET_MS:.0f} ms per rule over {args.spans:,} stored spans: "
          f"{verdict(worst <= TARGET_MS)} (slowest rule {worst:.0f} ms a pass)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AIOPS_SCHEDULER", "0")
    sys.exit(main())
