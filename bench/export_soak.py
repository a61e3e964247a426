"""The OTLP export under load, its receiver stopped twice: ``python bench/export_soak.py`` (10 minutes).

The issue's target: "10 minutes at 2,000 spans/s with the receiver down twice for 60 s each loses
0 spans, and the app's request throughput stays within 5 % of export-off." This runs it with real
parts on loopback:

- the **receiver**: a second instance of this product (gunicorn, its ``POST /v1/traces``, SQLite),
  recording nothing of its own (``AIOPS_RECORD_REQUESTS=0``), so its span table holds exactly what
  arrived; it is stopped (SIGTERM) ``--outages`` times for ``--outage-seconds`` each, evenly spread
  over the run, and started again on the same port and database;
- the **app under test** in the production layout: gunicorn (one gthread worker per CPU) and one
  ``flask aiops worker``, exporting to the receiver with ``AIOPS_EXPORT_INGESTED=1`` and the export's
  default buffer, backoff and breaker; and beside it the same app with export **off**;
- the **load**: ``--rate`` spans/s of OTLP (512-span protobuf batches made by the SDK, as
  ``bench/ingest.py`` makes them, paced; a refused batch is sent again as an SDK would) into the
  app, and a closed loop of ``GET /inventory`` (the demo's simulated work off) from 8 keep-alive
  connections in a separate client process: the request throughput.

In one run, for ``--minutes``: both apps get the same feed all the time (so their stores grow
alike: an app judged on a fresh store against one that grew for ten minutes would measure the
store, not the export), and the request loop takes turns of 5 s on one, then the other, so both are
measured on the same machine in the same minutes. Then the wait for the export to drain. (A first
version measured export off before and after, on a small store, and gave 0.70.)

**Lost**: every span the app stored up to the end of the load (the ingested ones and its own:
the requests it served, ``POST /v1/traces`` included, and its worker's detection cycles) is looked
up at the receiver, by (trace id, span id), reading both databases directly (no request to either
app, which would be a span to export in turn), until all are there or ``--drain-timeout``.
**Duplicates**: the receiver stores a span id once, so duplicates show only in what it was sent:
its ``aiops_spans_ingested_total`` (spans delivered, duplicates included) summed over its runs
(each run counts in its own ``PROMETHEUS_MULTIPROC_DIR``, read from the files once the run is
over) minus the spans it holds. **Throughput**: requests/s of the loop with export on (all of it,
and while the receiver was down) over export off; beside it the CPUs busy
(from ``/proc``): the app's processes, the receiver's (its restarts included: a cost of the bench,
not of the product, whose backend runs elsewhere) and the whole machine's (anything else running
shows there).

Options: ``--minutes`` (10), ``--rate`` spans/s (2000), ``--outages`` (2), ``--outage-seconds`` (60),
``--drain-timeout`` s (600),
``--database-url`` (the apps' PostgreSQL server on loopback: a fresh database each; default
SQLite; the receiver keeps SQLite), ``--json OUT``, ``--keep DIR`` (the servers' logs).
Exit status 1 when a span was lost or the throughput target was missed.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import multiprocessing
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenarios as sc  # noqa: E402  (bench/ is on sys.path when run as a script)
from common import GunicornServer, cpu_count, print_table, process_tree_cpu, verdict  # noqa: E402
from ingest import BATCH, Batches  # noqa: E402

from aiops.jobs.worker import CYCLE_SPAN  # noqa: E402

TARGET_RATIO = 0.95
SEGMENT = 5.0  # seconds per turn of the request loop: each turn is judged receiver up or down
CONNECTIONS = 8  # the request loop's keep-alive connections
FEEDERS = 4  # threads posting OTLP batches (one would fall behind when ingest slows)
RETRY_AFTER = 0.5  # seconds before a refused batch is sent again
RETRIES = 20
REQUEST_PATH = "/inventory"


# -- the plan ----------------------------------------------------------------------------------------


def outage_plan(seconds: float, outages: int, outage_seconds: float) -> list[tuple[float, float]]:
    """(start, end) of each outage in seconds from the start of the export-on phase: centred on
    equal fractions of it, never overlapping, none running past it."""
    plan = []
    for i in range(1, outages + 1):
        start = max(seconds * i / (outages + 1) - outage_seconds / 2, plan[-1][1] + 1 if plan else 1.0)
        plan.append((start, min(start + outage_seconds, seconds)))
    if any(end <= start for start, end in plan):
        raise ValueError(f"{outages} outages of {outage_seconds:g}s do not fit in {seconds:g}s")
    return plan


@dataclass
class Turn:
    """One turn of the request loop: requests answered 200, the others, its seconds, and whether
    the receiver was down at any point of it."""

    started: float
    seconds: float
    requests: int
    errors: int
    down: bool = False


def mark_down(turns: list[Turn], downs: list[tuple[float, float]]) -> None:
    """Mark the turns that overlap a time the receiver was down (monotonic clock)."""
    for turn in turns:
        turn.down = any(turn.started < end and start < turn.started + turn.seconds for start, end in downs)


def rate(turns: list[Turn]) -> float:
    seconds = sum(t.seconds for t in turns)
    return sum(t.requests for t in turns) / seconds if seconds else float("nan")


# -- the load --------------------------------------------------------------------------------------------


def _get_until(port: int, stop_at: float, tally: list[int]) -> None:
    """One keep-alive connection's ``GET /inventory`` until ``stop_at``: tally [answered 200, other]."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < stop_at:
        try:
            conn.request("GET", REQUEST_PATH)
            response = conn.getresponse()
            response.read()
            tally[response.status != 200] += 1
        except (OSError, http.client.HTTPException):
            tally[1] += 1
            conn.close()
            time.sleep(0.05)
    conn.close()


def _request_loop(pipe, connections: int) -> None:
    """The client process: for each (port, seconds) asked, a closed loop of ``GET /inventory`` from
    ``connections`` keep-alive connections; answers (requests answered 200, others, seconds)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    while (job := pipe.recv()) is not None:
        port, seconds = job
        tallies = [[0, 0] for _ in range(connections)]
        t0 = time.monotonic()
        threads = [threading.Thread(target=_get_until, args=(port, t0 + seconds, tally)) for tally in tallies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pipe.send((sum(t[0] for t in tallies), sum(t[1] for t in tallies), time.monotonic() - t0))


class RequestLoop:
    """The request loop's process (forked first, before any thread of this one starts)."""

    def __init__(self, connections: int = CONNECTIONS):
        context = multiprocessing.get_context("fork")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_request_loop, args=(child, connections), daemon=True)
        self.process.start()

    def turn(self, port: int, seconds: float) -> Turn:
        started = time.monotonic()
        self.pipe.send((port, seconds))
        ok, failed, elapsed = self.pipe.recv()
        return Turn(started, elapsed, ok, failed)

    def close(self) -> None:
        try:
            self.pipe.send(None)
        except OSError:
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


class Feed:
    """``rate`` spans/s of OTLP into ``port``: its n-th batch is due n periods after the start
    (paced, open loop: a late batch goes at once, then the schedule resumes). A batch answered 5xx or
    429, or not answered, is sent again after ``RETRY_AFTER`` s, as an SDK would; one answered with
    another 4xx is not (and counted). ``numbers`` hands out the batch numbers (``Batches.body``: fresh
    trace ids, times moving on), shared by every feed of a run."""

    def __init__(self, port: int, spans_per_second: float, batches: Batches, numbers: itertools.count):
        self.port, self.period, self.batches, self.numbers = port, BATCH / spans_per_second, batches, numbers
        self.acked = self.retried = self.refused = self.failed = 0
        self._sent = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post, daemon=True) for _ in range(FEEDERS)]
        self.t0 = 0.0

    def __enter__(self) -> Feed:
        self.t0 = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _count(self, name: str, spans: int = BATCH) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + spans)

    def _post(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Content-Type": "application/x-protobuf"}
        while True:
            with self._lock:
                n, k = next(self._sent), next(self.numbers)
            if self._stop.wait(max(0.0, self.t0 + n * self.period - time.monotonic())):
                return
            body = self.batches.body(k)
            for _ in range(RETRIES):
                try:
                    conn.request("POST", "/v1/traces", body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    conn.close()
                    status = None
                if status == 200:
                    self._count("acked")
                    break
                if status is not None and 400 <= status < 500 and status != 429:
                    self._count("refused")
                    break
                self._count("retried", 1)
                time.sleep(RETRY_AFTER)
            else:
                self._count("failed")


# -- the servers -----------------------------------------------------------------------------------------


def app_env(db_url: str, metrics: Path, **export) -> dict[str, str]:
    return {"AIOPS_DATABASE_URL": db_url, "AIOPS_ENABLE_SIMULATION": "1", "AIOPS_DEMO_WORK": "0",
            "AIOPS_API_TOKEN": "", "PROMETHEUS_MULTIPROC_DIR": str(metrics), **export}


class Receiver:
    """The receiving instance: each run of it counts in a metrics directory of its own."""

    def __init__(self, folder: Path, logs: Path):
        self.folder, self.db = folder, folder / "receiver.db"
        self.runs: list[Path] = []
        self._cpu = 0.0
        env = {"AIOPS_DATABASE_URL": f"sqlite:///{self.db}", "AIOPS_RECORD_REQUESTS": "0",
               "AIOPS_ENABLE_SIMULATION": "0", "AIOPS_SERVICE_NAME": "receiver", "AIOPS_SCHEDULER": "0"}
        self.server = GunicornServer(env, workers=cpu_count(), threads=8, log_path=logs / "receiver.log")

    def start(self) -> Receiver:
        self.runs.append(self.folder / f"receiver-metrics-{len(self.runs) + 1}")
        self.runs[-1].mkdir()
        self.server.env["PROMETHEUS_MULTIPROC_DIR"] = str(self.runs[-1])
        self.server.start(timeout=60)
        return self

    def stop(self) -> None:
        if self.server.proc is not None:
            self._cpu += process_tree_cpu(self.server.proc.pid) or 0.0
        self.server.stop()

    def cpu(self) -> float:
        """CPU seconds of every run so far (to its stop; the running one's until now)."""
        live = self.server.proc is not None and process_tree_cpu(self.server.proc.pid) or 0.0
        return self._cpu + live

    def delivered(self) -> tuple[int, int]:
        """(spans delivered, spans rejected) over every run, from the runs' counter files."""
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        totals = {"aiops_spans_ingested_total": 0.0, "aiops_spans_rejected_total": 0.0}
        for folder in self.runs:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(folder))
            for family in registry.collect():
                for sample in family.samples:
                    if sample.name in totals:
                        totals[sample.name] += sample.value
        return int(totals["aiops_spans_ingested_total"]), int(totals["aiops_spans_rejected_total"])


class Background:
    """A daemon thread running ``_run`` for the length of a ``with`` block (``_stop`` set at its end)."""

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = 0.0

    def __enter__(self):
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(120)

    def _run(self) -> None:
        raise NotImplementedError


class Outages(Background):
    """Stops and restarts the receiver on the plan; notes when it was down."""

    def __init__(self, receiver: Receiver, plan: list[tuple[float, float]]):
        super().__init__()
        self.receiver, self.plan = receiver, plan
        self.downs: list[tuple[float, float]] = []  # monotonic: stopping began, answering again
        self.errors: list[str] = []

    def _run(self) -> None:
        for start, end in self.plan:
            if self._stop.wait(max(0.0, self.t0 + start - time.monotonic())):
                return
            down = time.monotonic()
            self.receiver.stop()
            print(f"  {down - self.t0:.0f}s: receiver stopped", flush=True)
            self._stop.wait(max(0.0, self.t0 + end - time.monotonic()))
            try:
                self.receiver.start()
            except RuntimeError as exc:
                self.errors.append(str(exc))
                return
            self.downs.append((down, time.monotonic()))
            print(f"  {time.monotonic() - self.t0:.0f}s: receiver answering again", flush=True)


class FolderPeak(Background):
    """The largest size a folder (the fallback files of every process) reached, sampled each second."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder, self.peak = folder, 0

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            size = 0
            for path in self.folder.rglob("*.jsonl"):
                try:
                    size += path.stat().st_size
                except FileNotFoundError:  # sent and removed meanwhile
                    pass
            self.peak = max(self.peak, size)


# -- reading the stores ------------------------------------------------------------------------------------


def span_keys(url: str, upto: int | None = None) -> tuple[set[str], int]:
    """(trace id + span id of every span with ``id <= upto``, the highest id) of a database."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            top = conn.scalar(sa.text("SELECT max(id) FROM spans")) or 0
            limit = top if upto is None else upto
            rows = conn.execution_options(yield_per=50_000).execute(
                sa.text("SELECT trace_id || span_id FROM spans WHERE id <= :upto"), {"upto": limit})
            return {key for (key,) in rows}, top
    finally:
        engine.dispose()


def max_id(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text("SELECT max(id) FROM spans")) or 0
    finally:
        engine.dispose()


def count(db: Path) -> tuple[int, int]:
    """(spans, of them the sender's detection cycles) in the receiver's database."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        cycles = conn.execute("SELECT count(*) FROM spans WHERE service = 'aiops' AND endpoint = ?",
                              (CYCLE_SPAN,)).fetchone()[0]
        return conn.execute("SELECT count(*) FROM spans").fetchone()[0], cycles


def wait_drained(app_url: str, receiver: Receiver, upto: int, timeout: float) -> tuple[int, int, float]:
    """Wait until every span of the app with ``id <= upto`` is at the receiver: (spans, missing, s)."""
    started = time.monotonic()
    sent, _ = span_keys(app_url, upto)
    while True:
        got, _ = span_keys(f"sqlite:///{receiver.db}")
        missing = len(sent - got)
        elapsed = time.monotonic() - started
        if not missing or elapsed > timeout:
            return len(sent), missing, elapsed
        print(f"  draining: {missing:,} of {len(sent):,} spans not at the receiver yet ({elapsed:.0f}s)",
              flush=True)
        time.sleep(5.0)


def health(server) -> dict:
    body = server.get("/telemetry/health", timeout=30).json()
    return {"status": body["status"], **body["resilience_metrics"]}


def tree_cpu(server) -> float:
    """CPU seconds of gunicorn (master and workers) and the worker process beside it."""
    pids = [server.proc.pid] + [p.pid for p in getattr(server, "worker_processes", [])]
    return sum(process_tree_cpu(pid) or 0.0 for pid in pids)


# -- the phases -----------------------------------------------------------------------------------------


def machine_cpu() -> float:
    """CPU seconds the whole machine spent busy since boot (Linux ``/proc/stat``; else 0)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def interrupted(signum, frame):
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: the context managers stop every child process


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="the export-on soak (10)")
    parser.add_argument("--rate", type=float, default=2000.0, help="OTLP spans/s into the app (2000)")
    parser.add_argument("--outages", type=int, default=2, help="times the receiver is stopped (2)")
    parser.add_argument("--outage-seconds", type=float, default=60.0, help="seconds each (60)")
    parser.add_argument("--drain-timeout", type=float, default=600.0, help="seconds to wait for the "
                        "export to deliver everything after the load (600)")
    parser.add_argument("--database-url", help="postgresql+psycopg://postgres@127.0.0.1:5432/NAME: the apps' "
                        "databases NAME_on_<pid> and NAME_off_<pid> (default: SQLite)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep", type=Path, help="keep the servers' logs in this folder")
    args = parser.parse_args()
    if args.database_url and sa.engine.make_url(args.database_url).host not in sc.LOOPBACK:
        parser.error("--database-url must point at a loopback address")
    try:
        args.plan = outage_plan(args.minutes * 60, args.outages, args.outage_seconds)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def run(args, loop: RequestLoop, tmp: Path, logs: Path) -> dict:
    print("making 512-span protobuf batches with the OpenTelemetry SDK ...", flush=True)
    batches, numbers = Batches(), itertools.count()
    with ExitStack() as stack:
        receiver = Receiver(tmp, logs).start()
        stack.callback(receiver.stop)
        on_url = stack.enter_context(sc.database("on", args.database_url, tmp))
        off_url = stack.enter_context(sc.database("off", args.database_url, tmp))
        (tmp / "on-metrics").mkdir()
        (tmp / "off-metrics").mkdir()
        on_env = app_env(on_url, tmp / "on-metrics", AIOPS_EXPORT_OTLP_ENDPOINT=receiver.server.url,
                         AIOPS_EXPORT_INGESTED="1", AIOPS_EXPORT_FALLBACK_DIR=str(tmp / "fallback"))
        on = stack.enter_context(sc.h.running(logs, on_env, name="app-export-on", workers=cpu_count()))
        off = stack.enter_context(sc.h.running(logs, app_env(off_url, tmp / "off-metrics"),
                                               name="app-export-off", workers=cpu_count()))
        print(f"receiver {receiver.server.url}; app with export {on.url}, without {off.url}; "
              f"{cpu_count()} gunicorn workers each and a worker process; {cpu_count()} CPUs", flush=True)

        print(f"{args.minutes:g} min, both apps fed {args.rate:g} spans/s each, the request loop in "
              f"turns of {SEGMENT:g} s on one then the other; receiver down at "
              + ", ".join(f"{a:.0f}-{b:.0f}s" for a, b in args.plan), flush=True)
        on_feed = Feed(on.port, args.rate, batches, numbers)
        off_feed = Feed(off.port, args.rate, batches, numbers)
        meters = {"on": lambda: tree_cpu(on), "off": lambda: tree_cpu(off), "receiver": receiver.cpu,
                  "machine": machine_cpu}
        on_turns, off_turns = [], []
        with Outages(receiver, args.plan) as outages, FolderPeak(tmp / "fallback") as fallback, \
                on_feed, off_feed:
            start, t0 = {name: read() for name, read in meters.items()}, time.monotonic()
            while (left := t0 + args.minutes * 60 - time.monotonic()) > 1.0:
                on_turns.append(loop.turn(on.port, min(SEGMENT, left / 2)))
                off_turns.append(loop.turn(off.port, min(SEGMENT, left / 2)))
            elapsed = time.monotonic() - t0
            cpu = {name: round((read() - start[name]) / elapsed, 2) for name, read in meters.items()}
        if outages.errors:
            raise RuntimeError(f"the receiver did not start again: {outages.errors}")
        mark_down(on_turns, outages.downs)
        time.sleep(1.0)  # the span buffers' last writes (AIOPS_FLUSH_INTERVAL 0.2 s)
        upto = max_id(on_url)
        print(f"waiting for the export to deliver the {upto:,} spans stored so far ...", flush=True)
        spans, lost, drain_s = wait_drained(on_url, receiver, upto, args.drain_timeout)
        figures = health(on)
        for process in on.worker_processes:  # the app, then the receiver: what the app still holds
            process.stop()  # goes to its fallback file, not to the receiver (neither sent nor lost)
        on.stop()
        receiver.stop()
        delivered, rejected = receiver.delivered()
        held, cycles = count(receiver.db)

    up = [t for t in on_turns if not t.down]
    down = [t for t in on_turns if t.down]
    ratio = rate(on_turns) / rate(off_turns)
    return {
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "keep")} | {
            "database_url": "postgresql" if args.database_url else "sqlite"},
        "ingest": {"acknowledged": on_feed.acked, "retried_batches": on_feed.retried,
                   "refused_spans": on_feed.refused, "given_up_spans": on_feed.failed,
                   "rate_achieved": round(on_feed.acked / (args.minutes * 60), 1)},
        "export": {"spans_stored_by_app": spans, "lost": lost, "drain_seconds": round(drain_s, 1),
                   "delivered_to_receiver": delivered, "held_by_receiver": held, "cycle_spans": cycles,
                   "rejected_by_receiver": rejected, "duplicates": delivered - held,
                   "fallback_peak_bytes": fallback.peak, "health": figures},
        "outages": [{"down_s": round(a - outages.t0, 1), "up_s": round(b - outages.t0, 1)}
                    for a, b in outages.downs],
        "throughput": {
            "off_rps": round(rate(off_turns), 1), "on_rps": round(rate(on_turns), 1),
            "on_up_rps": round(rate(up), 1), "on_down_rps": round(rate(down), 1),
            "ratio": round(ratio, 4), "errors_on": sum(t.errors for t in on_turns),
            "errors_off": sum(t.errors for t in off_turns),
            "cpus_busy": cpu,
            "turns": {"on": [asdict(t) for t in on_turns], "off": [asdict(t) for t in off_turns]},
        },
    }


def report(result: dict) -> bool:
    ingest, export, through = result["ingest"], result["export"], result["throughput"]
    print()
    print_table(["", "figure"], [
        ["OTLP spans acknowledged by the app (export on)", f"{ingest['acknowledged']:,}"],
        ["  spans/s; batches sent again; spans refused (4xx); given up",
         f"{ingest['rate_achieved']:,}; {ingest['retried_batches']}; {ingest['refused_spans']}; "
         f"{ingest['given_up_spans']}"],
        ["spans the app stored (ingested and its own)", f"{export['spans_stored_by_app']:,}"],
        ["  of them not at the receiver (lost)", f"{export['lost']:,}"],
        ["  drained in (s, after the load)", export["drain_seconds"]],
        ["spans delivered to the receiver (its counters)", f"{export['delivered_to_receiver']:,}"],
        ["spans the receiver holds (distinct ids)", f"{export['held_by_receiver']:,}"],
        ["  of them the worker's detection cycles", export["cycle_spans"]],
        ["  duplicates delivered; rejected by the receiver",
         f"{export['duplicates']:,}; {export['rejected_by_receiver']:,}"],
        ["fallback files at their largest (MB, all processes)",
         f"{export['fallback_peak_bytes'] / 1e6:,.1f}"],
        ["export health after the drain", " ".join(f"{k}={export['health'][k]}" for k in (
            "status", "exported", "retried", "dropped", "breaker_trips", "queued", "fallback_bytes"))],
    ])
    print()
    cpu = through["cpus_busy"]
    print_table(["GET /inventory", "req/s", "errors", "CPUs busy (whole run)"], [
        ["export off", f"{through['off_rps']:,.1f}", through["errors_off"], f"app {cpu['off']}"],
        ["export on (all)", f"{through['on_rps']:,.1f}", through["errors_on"],
         f"app {cpu['on']}, receiver {cpu['receiver']}"],
        ["  receiver up", f"{through['on_up_rps']:,.1f}", "", ""],
        ["  receiver down", f"{through['on_down_rps']:,.1f}", "", ""],
    ])
    print(f"(machine: {cpu['machine']} of {cpu_count()} CPUs busy: both apps, the receiver, this bench's "
          "load and anything else running)")
    lost_ok = export["lost"] == 0 and ingest["given_up_spans"] == ingest["refused_spans"] == 0
    fast_ok = through["ratio"] >= TARGET_RATIO
    print(f"\nthroughput export on / off: {through['ratio']:.3f}")
    print(f"target: 0 spans lost: {verdict(lost_ok)}; throughput >= {TARGET_RATIO} of export-off: "
          f"{verdict(fast_ok)}")
    return lost_ok and fast_ok


def main() -> int:
    args = arguments()
    loop = RequestLoop()  # forked before any thread starts
    signal.signal(signal.SIGTERM, interrupted)
    try:
        with tempfile.TemporaryDirectory(prefix="aiops-bench-export-") as tmp:
            logs = args.keep or Path(tmp)
            logs.mkdir(parents=True, exist_ok=True)
            result = run(args, loop, Path(tmp), logs)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    finally:
        loop.close()
    ok = report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
