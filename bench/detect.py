"""Detection cycle cost against history size: ``python bench/detect.py``.

Builds SQLite stores of synthetic traces (20 services x 10 endpoints = 200
endpoints; each trace is an entry SERVER span, a CLIENT call, the callee's
SERVER span, its CLIENT call and a third service's SERVER span, with per-endpoint
latencies and jitter), with baselines learned by real cycles, then times one
real detection cycle (``aiops.jobs.cycle.run_claimed``: claim, read the new spans,
window stats, baselines, self-time verdicts, RCA, incidents, learning, commit)
after appending fresh spans. Cases, alternated over several rounds so drift
hits them alike:

- ``1M history, 10k new``: the headline (target <= 250 ms);
- ``100k history, 10k new``: same new spans, 10x less history;
- ``1M history, 1k new``: same history, 10x fewer new spans;
- ``1M history, 10k new, fault``: one service 10x slower in the new window,
  so anomalies, trace lookups (RCA) and an incident are part of the cycle;
- ``+ logs``: the first and the last case again on a third store that also
  holds 1M log records of history and gets 10k new ones with the 10k spans
  (one line per SERVER span, with its trace and span id): the cycle also
  reads them (``aiops.logs.feed.StoreFeed``), mines their templates (drain3)
  and judges them (``aiops.logs.signals``). The bodies come from 300 templates
  (15 per service, used with Zipf-like frequencies) filled with ids, uuids,
  numbers, IPs and words; about 5 % are WARN and 1 % ERROR. With the fault,
  the slow service also logs ERROR lines of a template it never wrote before.

The cost should follow the new spans, not the history: the first two should
match, the third be several times cheaper. The stores are built with raw
``executemany`` (indexes dropped during the bulk load and rebuilt, as the
schema defines them), in a temporary folder.

Options: ``--rounds`` (5), ``--history`` (1,000,000; also the log records of
history), ``--profile`` (cProfile the headline case and its ``+ logs`` twin once
and print the top functions), ``--no-logs`` (leave out the store with logs).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import os
import pstats
import random
import re
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bulk_load, median, print_table, verdict  # noqa: E402
from metric_maker import MetricMaker  # noqa: E402
from metric_maker import insert_sql as metric_insert_sql  # noqa: E402

TARGET_MS = 250.0
SERVICES = [f"svc{i:02d}" for i in range(20)]
ENDPOINTS = [(s, f"GET /api/{s}/op{j}") for s in SERVICES for j in range(10)]
KIND_SERVER, KIND_CLIENT = 2, 3
SPANS_PER_TRACE = 5
RATE = 2000.0  # spans per second of data clock: 1M spans of history is ~8 minutes


class TraceMaker:
    """Deterministic synthetic traces; ``spans(n, t0, rate)`` returns rows in SPAN_FIELDS order."""

    def __init__(self, seed: int = 1):
        self.rnd = random.Random(seed)
        # Each endpoint's own work (ms): a typical value and a spread.
        self.work = {key: (self.rnd.uniform(2, 40), self.rnd.uniform(0.1, 0.3)) for key in ENDPOINTS}

    def _self_ms(self, key, slow: set) -> float:
        typical, spread = self.work[key]
        value = self.rnd.lognormvariate(0, spread) * typical
        return value * 10 if key[0] in slow else value

    def spans(self, count: int, t0: float, rate: float, slow: frozenset = frozenset()) -> list[tuple]:
        rnd = self.rnd
        rows: list[tuple] = []
        traces = count // SPANS_PER_TRACE
        for n in range(traces):
            start = t0 + n * SPANS_PER_TRACE / rate
            trace_id = f"{rnd.getrandbits(128):032x}"
            a, b, c = rnd.sample(range(len(SERVICES)), 3)
            ea = ENDPOINTS[a * 10 + rnd.randrange(10)]
            eb = ENDPOINTS[b * 10 + rnd.randrange(10)]
            ec = ENDPOINTS[c * 10 + rnd.randrange(10)]
            ids = [f"{rnd.getrandbits(64):016x}" for _ in range(SPANS_PER_TRACE)]
            dc = self._self_ms(ec, slow)
            db_ = self._self_ms(eb, slow) + dc + 1.0
            da = self._self_ms(ea, slow) + db_ + 1.0
            lead_a, lead_b = (da - db_ - 1.0) / 2000.0, (db_ - dc - 1.0) / 2000.0
            rows += [
                (trace_id, ids[0], None, ea[0], ea[1], KIND_SERVER, "GET", 200, False, start, da,
                 None, None, None, None),
                (trace_id, ids[1], ids[0], ea[0], eb[1], KIND_CLIENT, "GET", 200, False, start + lead_a,
                 db_ + 1.0, eb[0], None, None, None),
                (trace_id, ids[2], ids[1], eb[0], eb[1], KIND_SERVER, "GET", 200, False,
                 start + lead_a + 0.0005, db_, None, None, None, None),
                (trace_id, ids[3], ids[2], eb[0], ec[1], KIND_CLIENT, "GET", 200, False,
                 start + lead_a + lead_b, dc + 1.0, ec[0], None, None, None),
                (trace_id, ids[4], ids[3], ec[0], ec[1], KIND_SERVER, "GET", 200, False,
                 start + lead_a + lead_b + 0.0005, dc, None, None, None, None),
            ]
        return rows


# Log bodies: a template is text with slots, filled per line. {n} a count, {ms} a duration,
# {id} a hex id, {uuid} a uuid, {ip} an address, {word} one of a few words (drain3 makes it <*>).
LOG_TEMPLATES = [
    "handled {op} for user {uuid} in {ms} ms",
    "loaded {n} rows from {table} in {ms} ms",
    "cache miss for key {table}:{id} (ttl {n}s)",
    "cache hit for key {table}:{id}",
    "connected to {ip}:5432 (pool size {n})",
    "user {word} logged in from {ip}",
    "order {n} moved from {word} to {word}",
    "request {id} accepted by {op}",
    "sent {n} bytes to {ip} in {ms} ms",
    "scheduled job {word} next run in {n} s",
    "token refreshed for client {id} expires in {n} s",
    "feature flag {word} evaluated to {word} for {uuid}",
    "published event {op} id={uuid} partition {n}",
    "consumed {n} messages from topic {table} lag {n}",
    "GC pause {ms} ms heap {n} MB",
]
WARN_TEMPLATES = [
    "slow query on {table} took {ms} ms (threshold 200 ms)",
    "retrying request {id} to {op} attempt {n} of 3",
    "connection pool {table} nearly exhausted: {n} of {n} in use",
]
ERROR_TEMPLATES = [
    "failed to process {op} for user {uuid}: upstream returned 503",
    "java.lang.IllegalStateException: no instances available for {op} (request {id})",
]
FAULT_TEMPLATE = "timeout after {ms} ms waiting for {table} (request {id}, attempt {n})"
WORDS = ["alice", "bob", "carol", "dave", "eve", "pending", "paid", "shipped", "on", "off", "nightly"]
TABLES = ["orders", "users", "carts", "payments", "stock", "sessions"]


class LogMaker:
    """One log line per SERVER span, with the span's trace and span id: (time, service, severity
    number, severity text, body, trace id, span id, attributes) rows in LOG_FIELDS order."""

    def __init__(self, seed: int = 1):
        self.rnd = random.Random(seed)
        # 15 templates per service (the service's own nouns), used with Zipf-like weights.
        self.templates = {}
        for s in SERVICES:
            texts = [t.replace("{op}", f"{s}.{verb}") for t, verb in
                     zip(LOG_TEMPLATES, itertools.cycle(["create", "get", "update", "list", "sync"]))]
            self.templates[s] = ([(9, "INFO", t) for t in texts[:10]]
                                 + [(13, "WARN", t) for t in WARN_TEMPLATES]
                                 + [(17, "ERROR", t.replace("{op}", f"{s}.sync")) for t in ERROR_TEMPLATES])
        # Weights: INFO templates Zipf-like (94 %), WARN 5 %, ERROR 1 %.
        zipf = [1 / (k + 1) for k in range(10)]
        self.weights = [0.94 * z / sum(zipf) for z in zipf] + [0.05 / 3] * 3 + [0.01 / 2] * 2

    def _fill(self, text: str) -> str:
        rnd = self.rnd
        out = []
        for part in re.split(r"(\{\w+\})", text):
            if part == "{n}":
                out.append(str(rnd.randrange(1, 5000)))
            elif part == "{ms}":
                out.append(f"{rnd.uniform(0.5, 900):.1f}")
            elif part == "{id}":
                out.append(f"{rnd.getrandbits(64):016x}")
            elif part == "{uuid}":
                out.append(str(uuid.UUID(int=rnd.getrandbits(128), version=4)))
            elif part == "{ip}":
                out.append(f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}")
            elif part == "{word}":
                out.append(rnd.choice(WORDS))
            elif part == "{table}":
                out.append(rnd.choice(TABLES))
            else:
                out.append(part)
        return "".join(out)

    def logs(self, spans: list[tuple], slow: frozenset = frozenset()) -> list[tuple]:
        rnd = self.rnd
        rows = []
        for sp in spans:
            if sp[5] != KIND_SERVER:
                continue
            service = sp[3]
            if service in slow and rnd.random() < 0.5:
                number, level, text = 17, "ERROR", FAULT_TEMPLATE
            else:
                number, level, text = rnd.choices(self.templates[service], self.weights)[0]
            rows.append((sp[9], service, number, level, self._fill(text), sp[0], sp[1], None))
        return rows


class Store:
    """One SQLite store with its own app (and engine); spans are appended with raw sqlite3."""

    def __init__(self, folder: Path, name: str, history: int, maker: TraceMaker,
                 log_maker: LogMaker | None = None, metric_maker: MetricMaker | None = None):
        from aiops.settings import settings_of
        from aiops.store.schema import ensure_schema
        from app import create_app
        from telemetry.columns import LOG_FIELDS
        from telemetry.columns import SPAN_COLUMNS as SPAN_FIELDS  # its rows carry no attributes

        self.path = folder / f"{name}.db"
        self.app = create_app({
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{self.path}",
            "AIOPS_SCHEDULER": False,
            "AIOPS_RECORD_REQUESTS": False,
        })
        with self.app.app_context():
            ensure_schema()
        self.settings = settings_of(self.app)
        self.maker = maker
        marks = ", ".join("?" * len(SPAN_FIELDS))
        self.sql = f"INSERT INTO spans ({', '.join(SPAN_FIELDS)}) VALUES ({marks})"
        log_marks = ", ".join("?" * len(LOG_FIELDS))
        self.log_sql = f"INSERT INTO logs ({', '.join(LOG_FIELDS)}) VALUES ({log_marks})"
        self.log_maker = log_maker
        self.metric_maker = metric_maker
        self.metric_sql = metric_insert_sql()
        self.clock = time.time() - history / RATE - 600
        t0 = time.perf_counter()
        self._bulk_load(history - 20_000)
        # Baselines as a running service has them: learned by real cycles over normal windows
        # (the log baselines judge a service after 3 normal windows, learned after 10).
        for _ in range(2 if log_maker is None else 5):
            self.append(10_000)
            self.cycle()
        logs = f" and {self.log_count():,} log records" if log_maker else ""
        print(f"  {name}: {history:,} spans{logs} of history in {time.perf_counter() - t0:.1f}s", flush=True)

    def log_count(self) -> int:
        with sqlite3.connect(self.path) as conn:
            return conn.execute("SELECT count(*) FROM logs").fetchone()[0]

    def _bulk_load(self, count: int) -> None:
        def fill(conn) -> None:
            step = 100_000
            for done in range(0, count, step):
                n = min(step, count - done)
                rows = self.maker.spans(n, self.clock, RATE)
                conn.executemany(self.sql, rows)
                if self.log_maker is not None:
                    # As many log records as spans: the SERVER spans' lines, twice.
                    lines = self.log_maker.logs(rows)
                    conn.executemany(self.log_sql, lines + lines[: n - len(lines)])
                self.clock += n / RATE
            if self.metric_maker is not None:
                # As many metric points as spans, at the density of the new ones (10k per 30 s, a point
                # per series every 6 s): 1M points are the 50 minutes up to now, not the spans' 8.
                seconds = step / (10_000 / 30.0)
                for done in range(0, count, step):
                    start = self.clock - (count - done) / (10_000 / 30.0)
                    conn.executemany(self.metric_sql, self.metric_maker.points(min(step, count - done), start,
                                                                               seconds))

        bulk_load(self.path, ("spans", "logs", "metric_points"), fill, analyze=False)
        with self.app.app_context():
            from sqlalchemy import text

            from aiops.jobs.cycle import STATE_ID, _ensure_state
            from aiops.store.models import DetectionState
            from telemetry.db import begin_write, db

            _ensure_state()
            begin_write()
            state = db.session.get(DetectionState, STATE_ID)
            state.cursor = db.session.execute(text("SELECT max(id) FROM spans")).scalar() or 0
            db.session.commit()
            db.session.remove()

    def append(self, count: int, slow: frozenset = frozenset()) -> None:
        """``count`` new spans that arrived in the last interval (30 s of data clock)."""
        rate = count / 30.0
        rows = self.maker.spans(count, self.clock, rate, slow)
        self.clock += count / rate
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(self.sql, rows)
        if self.log_maker is not None:
            # As many log records as spans: every SERVER span's line, and a second one for the
            # first SERVER spans (the same trace and span, another template).
            lines = self.log_maker.logs(rows, slow)
            lines += self.log_maker.logs(rows, slow)
            conn.executemany(self.log_sql, lines[:count])
        if self.metric_maker is not None:
            conn.executemany(self.metric_sql, self.metric_maker.points(count, self.clock - 30.0, 30.0, slow))
        conn.execute("COMMIT")
        conn.close()

    def cycle(self, profile: cProfile.Profile | None = None) -> tuple[float, float, dict]:
        """Run one claimed cycle now; (wall ms, CPU ms, summary)."""
        from aiops.jobs.cycle import run_claimed
        from telemetry.db import db

        with self.app.app_context():
            t0, c0 = time.perf_counter(), time.process_time()
            if profile is not None:
                profile.enable()
            summary = run_claimed(self.settings, force=True, now=self.clock)
            if profile is not None:
                profile.disable()
            elapsed, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
            db.session.remove()
        return elapsed, cpu, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-logs", action="store_true")
    parser.add_argument("--metrics", action="store_true",
                        help="also a store with 1M metric points of history and 10k new per cycle")
    args = parser.parse_args()
    big, small = args.history, args.history // 10

    with tempfile.TemporaryDirectory(prefix="aiops-bench-detect-") as tmp:
        print("building the stores ...", flush=True)
        stores = {"big": Store(Path(tmp), "big", big, TraceMaker(1)),
                  "small": Store(Path(tmp), "small", small, TraceMaker(2))}
        if not args.no_logs:
            stores["logs"] = Store(Path(tmp), "logs", big, TraceMaker(1), LogMaker(1))
        if args.metrics:
            stores["metrics"] = Store(Path(tmp), "metrics", big, TraceMaker(1),
                                      metric_maker=MetricMaker(SERVICES))
        faulty = frozenset({SERVICES[7]})
        cases = [  # (label, store, new spans, slow services)
            (f"{big:,} history, 10k new", "big", 10_000, frozenset()),
            (f"{small:,} history, 10k new", "small", 10_000, frozenset()),
            (f"{big:,} history, 1k new", "big", 1_000, frozenset()),
            (f"{big:,} history, 10k new, fault", "big", 10_000, faulty),
        ]
        if not args.no_logs:
            cases += [(f"+ logs: {big:,} + {big:,} logs history, 10k + 10k new", "logs", 10_000, frozenset()),
                      (f"+ logs: {big:,} + {big:,} logs history, 10k + 10k new, fault", "logs", 10_000,
                       faulty)]
        if args.metrics:
            label = f"+ metrics: {big:,} + {big:,} points history, 10k + 10k new"
            cases += [(label, "metrics", 10_000, frozenset()), (label + ", fault", "metrics", 10_000, faulty)]
        times: dict[str, list[float]] = {label: [] for label, *_ in cases}
        cpu: dict[str, list[float]] = {label: [] for label, *_ in cases}
        notes: dict[str, str] = {}
        for n in range(1, args.rounds + 1):
            for label, name, new, slow in cases:
                store = stores[name]
                store.append(new, slow)
                ms, cpu_ms, summary = store.cycle()
                assert summary["spans"] == new, summary
                times[label].append(ms)
                cpu[label].append(cpu_ms)
                notes[label] = (f"{summary['endpoints']} endpoints, {len(summary['anomalies'])} anomalies, "
                                f"{len(summary['incidents_opened']) + len(summary['incidents_updated'])} "
                                "incidents")
            print(f"  round {n}: " + ", ".join(f"{times[label][-1]:.0f}" for label, *_ in cases) + " ms",
                  flush=True)

        if args.profile:
            for name in [name for name in ("big", "logs", "metrics") if name in stores]:
                stores[name].append(10_000, faulty if name == "metrics" else frozenset())
                profile = cProfile.Profile()
                stores[name].cycle(profile)
                out = io.StringIO()
                pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(30)
                what = {"logs": "10k new spans and 10k new log records",
                        "metrics": "10k new spans and 10k new metric points"}.get(name, "10k new")
                print(f"\nprofile of one cycle (1M history, {what}), by cumulative time:")
                print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])

    med = {label: median(values) for label, values in times.items()}
    print()
    print_table(["case", "median ms", "min ms", "max ms", "median CPU ms", "last cycle"],
                [[label, f"{med[label]:.0f}", f"{min(times[label]):.0f}", f"{max(times[label]):.0f}",
                  f"{median(cpu[label]):.0f}", notes[label]] for label, *_ in cases])
    headline, small_hist, few_new, fault, *with_signals = (label for label, *_ in cases)
    with_logs = [label for label in with_signals if label.startswith("+ logs")]
    with_metrics = [label for label in with_signals if label.startswith("+ metrics")]
    print()
    print(f"history x10 (same 10k new): {med[headline] / med[small_hist]:.2f}x the time "
          "(1.0 = independent of history)")
    print(f"new spans /10 (same history): {med[few_new] / med[headline]:.2f}x the time "
          "(0.1 = proportional to new spans)")
    ok = med[headline] <= TARGET_MS and med[fault] <= TARGET_MS
    print(f"target <= {TARGET_MS:.0f} ms per cycle (1M history, 10k new; also with a fault): {verdict(ok)} "
          f"({med[headline]:.0f} ms, {med[fault]:.0f} ms with a fault)")
    if with_logs:
        logs, logs_fault = with_logs
        cpu_of = {label: median(values) for label, values in cpu.items()}
        print(f"10k new log records add {med[logs] - med[headline]:.0f} ms "
              f"({cpu_of[logs] - cpu_of[headline]:.0f} ms CPU); "
              f"with a fault {med[logs_fault] - med[fault]:.0f} ms")
        ok = med[logs] <= TARGET_MS and med[logs_fault] <= TARGET_MS
        print(f"target <= {TARGET_MS:.0f} ms per cycle with logs (10k new spans and 10k new log records "
              f"over 1M of each; also with a fault): {verdict(ok)} ({med[logs]:.0f} ms, "
              f"{med[logs_fault]:.0f} ms with a fault)")
    if with_metrics:
        plain, hog = with_metrics
        ratio, ratio_fault = med[plain] / med[headline], med[hog] / med[fault]
        ok = max(ratio, ratio_fault) <= 1.10
        print(f"10k new metric points over 1M: {ratio:.2f}x the cycle without them, {ratio_fault:.2f}x "
              f"with a fault (where RCA reads them); target <= 1.10x: {verdict(ok)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AIOPS_SCHEDULER", "0")
    sys.exit(main())
