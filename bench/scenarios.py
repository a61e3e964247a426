"""Every demo fault, N times, in the production layout: ``python bench/scenarios.py --repeat N``.

The unit and e2e tests trigger each cycle by hand and look once; this bench
runs the product as it is deployed and watches it work on its own: gunicorn
(4 gthread workers, ``app:create_app()``) serving, one ``flask --app app aiops
worker`` running detection every 2 s, and steady checkout traffic throughout.

Per scenario (one fault, or two at once) one stack on a fresh database learns
its baselines, then does N runs: inject the fault(s) at a random point of
the detection interval; poll ``GET
/aiops/incidents`` every 0.5 s; MTTD is the time from injection until an
active incident rooted at an expected endpoint first shows. After that, five
more detection cycles (counted on ``/metrics``, which the web and the worker
share) and the active incidents are read: the run is exact when their root
(service, endpoint) pairs are exactly the expected set; every active incident
beyond one per expected root is an extra. Then ``/simulate/clear``, and wait
until every incident has resolved itself (``AIOPS_RESOLVE_AFTER_CYCLES=2``)
and one more cycle has judged normal traffic. ``AIOPS_REOPEN_COOLDOWN=0``: a
run's incident is never the previous run's reopened.

Options: ``--repeat N`` (runs per scenario), ``--scenarios a,b`` (a subset),
``--database-url URL`` (a PostgreSQL server on loopback: a fresh database per
scenario, created and dropped on its ``postgres`` database; default SQLite in
a temporary directory), ``--json OUT`` (per-run results with every incident's
root and title), ``--keep DIR`` (keep the gunicorn/worker log of each scenario).
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, database  # noqa: E402  (also puts the checkout on sys.path)

from tests.e2e import helpers as h  # noqa: E402
from tests.support import environment  # noqa: E402

SERVICE = "shop"
INTERVAL = 2.0  # seconds between detection cycles
RATE = 15.0  # checkouts per second, when answers are fast enough
POLL = 0.5  # seconds between looks at the incidents
DETECT_TIMEOUT = 30.0  # a fault not detected by then is a miss (15 cycles; detection takes 1-6 s)
AFTER_CYCLES = 5  # cycles after detection before the incidents are read
SETTLE_CYCLES = 1  # cycles of normal traffic after the incidents resolved, before the next run
QUIET_TIMEOUT = 60.0  # for the incidents to resolve after a clear
WARM_UP_TIMEOUT = 120.0
ENV = {
    "AIOPS_SCHEDULER": "1",
    "AIOPS_DETECTION_INTERVAL": INTERVAL,
    "AIOPS_RESOLVE_AFTER_CYCLES": 2,
    "AIOPS_REOPEN_COOLDOWN": 0,
}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CYCLES = re.compile(r"^aiops_detection_cycle_duration_seconds_count(?:\{[^}]*\})? (\S+)$", re.M)


@dataclass(frozen=True)
class Scenario:
    """Faults injected together, and the root endpoints (service ``shop``) the incidents must name.

    A root endpoint of None is the whole service (``root_cause.endpoint`` null). ``env``: settings
    of its own. ``spread``: a path hit once on fresh connections after the injection, so every
    gunicorn worker serves a shop request soon (each starts its CPU hog on its next one).
    """

    name: str
    faults: tuple[tuple[str, dict], ...]
    roots: frozenset[str | None]
    env: tuple[tuple[str, object], ...] = ()
    spread: str | None = None

    @property
    def expected(self) -> set[tuple[str, str | None]]:
        return {(SERVICE, endpoint) for endpoint in self.roots}


# The parameters of docs/demo.md and tests/e2e/test_faults.py. A CPU hog slows every endpoint: its
# root is the whole service (docs/demo.md, tests/detection/test_evidence.py).
SCENARIOS = {s.name: s for s in (
    Scenario("delay", (("delay", {"endpoint": "payment", "duration": 3000}),), frozenset({"payment"})),
    Scenario("errors", (("error", {"endpoint": "inventory", "rate": 0.8}),), frozenset({"inventory"})),
    Scenario("cascade", (("error", {"endpoint": "payment", "rate": 1.0}),), frozenset({"payment"})),
    # Checkout gives up after 2.5 s as in the e2e test (5 s by default); inventory hangs 1 s longer.
    Scenario("timeout", (("timeout", {"endpoint": "inventory"}),), frozenset({"inventory"}),
             env=(("AIOPS_DEMO_TIMEOUT", 2.5),)),
    Scenario("network", (("network", {"endpoint": "payment", "delay_ms": 1000}),), frozenset({"payment"})),
    Scenario("cpu", (("cpu", {"threads": 4, "duration": 120}),), frozenset({None}), spread="/inventory"),
    Scenario("two", (("delay", {"endpoint": "payment", "duration": 1500}),
                     ("delay", {"endpoint": "inventory", "duration": 150})),
             frozenset({"payment", "inventory"})),
)}


class Traffic:
    """Steady ``POST /checkout`` from ``h.MAX_CLIENTS`` threads, about ``rate`` a second, until stopped.

    Not ``simulation.traffic``: that one catches up on its schedule after slow answers (the burst
    when a fault ends would be a load spike of its own) and cannot be stopped early.
    """

    def __init__(self, url: str, rate: float, threads: int = h.MAX_CLIENTS):
        self.url = url + "/checkout"
        self.period = threads / rate
        self.tally: collections.Counter = collections.Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(n * self.period / threads,), daemon=True)
                         for n in range(threads)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        deadline = time.monotonic() + 20
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def snapshot(self) -> collections.Counter:
        with self._lock:
            return collections.Counter(self.tally)

    def _client(self, wait: float) -> None:
        session = requests.Session()
        while not self._stop.wait(wait):
            started = time.monotonic()
            try:
                code: int | str = session.post(self.url, json={"amount": 10}, timeout=15).status_code
            except requests.RequestException as exc:
                code = type(exc).__name__
            with self._lock:
                self.tally[code] += 1
            wait = max(0.0, started + self.period - time.monotonic())  # late: next one now, no catching up


def cycles(server) -> int:
    """Detection cycles finished so far (the worker's, on the shared metrics directory)."""
    response = server.get("/metrics", timeout=10)
    response.raise_for_status()
    return round(sum(float(v) for v in CYCLES.findall(response.text)))


def wait_cycles(server, count: int, every=None) -> bool:
    """Until ``count`` more cycles finished (False: not in time), calling ``every`` at each look."""
    start = cycles(server)
    deadline = time.monotonic() + count * INTERVAL * 3 + 15
    while time.monotonic() < deadline:
        if every:
            every()
        if cycles(server) >= start + count:
            return True
        time.sleep(POLL)
    return False


def root(incident: dict) -> tuple[str | None, str | None]:
    return incident["root_cause"].get("service"), incident["root_cause"].get("endpoint")


def root_name(incident: dict) -> str:
    service, endpoint = root(incident)
    return f"{service}/{endpoint}" if endpoint else f"{service} (whole service)"


def brief(incident: dict) -> dict:
    return {"id": incident["id"], "root": root_name(incident), "title": incident["title"],
            "status": incident["status"], "affected": incident["affected_endpoints"]}


def active(server) -> list[dict]:
    return h.incidents(server)["active_incidents"]


def wait_quiet(server, every=None) -> float | None:
    """Seconds until no incident is active (None: still some after ``QUIET_TIMEOUT``); ``every``
    is what lists the active incidents, if not ``active``."""
    started = time.monotonic()
    while time.monotonic() - started < QUIET_TIMEOUT:
        if not (every() if every else active(server)):
            return round(time.monotonic() - started, 2)
        time.sleep(POLL)
    return None


class Watch:
    """What one run saw: each incident that became active after it started, with the seconds since
    injection it was first seen, and when each expected root first showed. ``dirty``: those active
    before it started (the previous run's, not resolved: should be none)."""

    def __init__(self, server, expected: set[tuple[str, str]]):
        self.server, self.expected = server, expected
        self.dirty = [brief(i) for i in active(server)]
        self.started = time.monotonic()
        self.seen: dict[str, dict] = {}
        self.first: dict[str, float] = {}

    def look(self) -> list[dict]:
        """The active incidents, noting the new ones."""
        incidents = active(self.server)
        at = round(time.monotonic() - self.started, 2)
        before = {i["id"] for i in self.dirty}
        for incident in (i for i in incidents if i["id"] not in before):
            self.seen.setdefault(incident["id"], {**brief(incident), "first_seen_s": at})
            if root(incident) in self.expected:
                self.first.setdefault(root_name(incident), at)
        return incidents

    def gone(self, final: list[dict]) -> list[dict]:
        """The incidents seen active this run that no longer are, with their last timeline event:
        one that vanished before the read was resolved or merged while the fault was on."""
        still = {i["id"] for i in final}
        out = []
        for incident_id, seen in self.seen.items():
            if incident_id not in still:
                now = self.server.get(f"/aiops/incidents/{incident_id}").json()
                out.append({**seen, "status": now["status"], "last_event": (now["timeline"] or [None])[-1]})
        return out


def judge(scenario: Scenario, incidents: list[dict]) -> tuple[bool, int]:
    """(exact, extra incidents): extras are those beyond one per expected root."""
    roots = [root(i) for i in incidents]
    return set(roots) == scenario.expected, len(roots) - len(set(roots) & scenario.expected)


def run_once(server, traffic: Traffic, scenario: Scenario) -> dict:
    """Inject, measure MTTD, read the incidents five cycles after detection, clear, wait until quiet."""
    for process in (server.proc, *(w.proc for w in server.worker_processes)):
        if process is None or process.poll() is not None:
            raise RuntimeError(f"gunicorn or the worker exited; see {server.log_path}")
    started, tally = time.monotonic(), traffic.snapshot()
    # A run starts just after a cycle (the settling one): inject at a random point of the
    # interval instead, or every first cycle would see exactly a full interval of the fault.
    time.sleep(random.uniform(0, INTERVAL))
    watch = Watch(server, scenario.expected)
    for kind, params in scenario.faults:
        h.inject(server, kind, **params)
    if scenario.spread:
        h.health_burst(server, path=scenario.spread)
    while not watch.first and time.monotonic() - watch.started < DETECT_TIMEOUT:
        watch.look()
        time.sleep(POLL)
    mttd = min(watch.first.values()) if watch.first else None
    counted = wait_cycles(server, AFTER_CYCLES, every=watch.look) if mttd is not None else None
    final = watch.look()
    exact, extra = judge(scenario, final)
    gone = watch.gone(final)

    cleared = server.post("/simulate/clear")
    cleared.raise_for_status()
    quiet = wait_quiet(server, every=watch.look)
    settled = wait_cycles(server, SETTLE_CYCLES) if quiet is not None else False
    return {
        "scenario": scenario.name, "exact": exact, "extra": extra, "mttd_s": mttd,
        "roots": sorted(root_name(i) for i in final), "incidents": [brief(i) for i in final],
        "first_seen_s": watch.first, "seen": list(watch.seen.values()), "gone_before_read": gone,
        "dirty_start": watch.dirty, "cycles_counted": counted, "quiet_after_clear_s": quiet,
        "settled": settled,
        "traffic": {str(k): v for k, v in (traffic.snapshot() - tally).items()},
        "seconds": round(time.monotonic() - started, 1),
    }


def warm_up(server) -> dict:
    """Until every demo endpoint has a baseline and two more cycles judged traffic with it, and
    no incident is active (a false alarm while learning resolves itself)."""
    started = time.monotonic()
    while any(h.metrics(server).get(e, {}).get("baseline_latency_ms") is None for e in h.DEMO_ENDPOINTS):
        if time.monotonic() - started > WARM_UP_TIMEOUT:
            raise RuntimeError(f"no baselines for {', '.join(h.DEMO_ENDPOINTS)} after {WARM_UP_TIMEOUT:g} s")
        time.sleep(POLL)
    if not wait_cycles(server, 2) or wait_quiet(server) is None:
        raise RuntimeError(f"warm-up did not settle: {h.describe(server)}")
    data = h.incidents(server)
    return {"seconds": round(time.monotonic() - started, 1),
            "incidents": [brief(i) for i in data["active_incidents"] + data["resolved_incidents"]]}


def migrate(env: dict[str, str], log_path: Path) -> None:
    """``flask --app app aiops migrate``, as before a deployment starts its processes."""
    with open(log_path, "ab") as out:
        subprocess.run([sys.executable, "-m", "flask", "--app", "app", "aiops", "migrate"], cwd=ROOT,
                       env=environment.clean(**env), stdout=out, stderr=subprocess.STDOUT, check=True,
                       timeout=120)


@contextmanager
def stack(scenario: Scenario, db_url: str, logs: Path) -> Iterator[tuple[object, Traffic]]:
    """Migrated database, gunicorn, the worker and traffic; all stopped on exit, traffic first."""
    with tempfile.TemporaryDirectory(prefix="aiops-bench-metrics-") as metrics_dir:
        env = h.shop_env(db_url, **{**ENV, **dict(scenario.env)}, PROMETHEUS_MULTIPROC_DIR=metrics_dir)
        migrate(env, logs / f"{scenario.name}.log")
        with h.running(logs, env, name=scenario.name) as server, Traffic(server.url, RATE) as traffic:
            yield server, traffic


def progress(n: int, repeat: int, result: dict) -> None:
    mttd = "missed" if result["mttd_s"] is None else f"mttd {result['mttd_s']:.1f}s"
    verdict = "EXACT" if result["exact"] else "NOT EXACT"
    print(f"{result['scenario']} {n}/{repeat}: {verdict}, {mttd}, roots {result['roots'] or '-'}, "
          f"extra {result['extra']}, quiet after clear {result['quiet_after_clear_s']}s, "
          f"run {result['seconds']}s, traffic {result['traffic']}", flush=True)
    if not result["exact"]:
        gone = {i["id"]: i for i in result["gone_before_read"]}
        for incident in result["seen"]:
            ended = gone.get(incident["id"])
            event = ended and (ended["last_event"] or {})
            status = f"{ended['status']} before the read ({event.get('event')}: {event.get('detail')})" \
                if ended else "active"
            print(f"    seen at {incident['first_seen_s']}s: {incident['root']} {incident['title']!r}, "
                  f"affected {incident['affected']}; {status}", flush=True)


def summary(results: list[dict], order: list[str]) -> list[dict]:
    rows = []
    for name in order:
        runs = [r for r in results if r["scenario"] == name]
        if not runs:
            continue
        exact = sum(r["exact"] for r in runs)
        mttd = [r["mttd_s"] for r in runs if r["mttd_s"] is not None]
        rows.append({
            "scenario": name, "runs": len(runs), "exact": exact,
            "exact_pct": round(100 * exact / len(runs), 1),
            "extra": sum(r["extra"] for r in runs), "missed": len(runs) - len(mttd),
            "mttd_p50_s": round(statistics.median(mttd), 2) if mttd else None,
            "mttd_max_s": max(mttd) if mttd else None,
            "seconds_per_run": round(statistics.mean(r["seconds"] for r in runs), 1),
        })
    return rows


def print_summary(rows: list[dict]) -> None:
    def seconds(value):
        return "-" if value is None else f"{value:.1f}"

    print("\n| scenario | runs | exact roots | extra/duplicate incidents | MTTD p50 (s) | MTTD max (s) "
          "| missed | s/run |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['scenario']} | {r['runs']} | {r['exact']}/{r['runs']} ({r['exact_pct']:g} %) "
              f"| {r['extra']} | {seconds(r['mttd_p50_s'])} | {seconds(r['mttd_max_s'])} | {r['missed']} "
              f"| {r['seconds_per_run']:.1f} |")


def interrupted(signum, frame):
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: the context managers stop every child process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario (1)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {','.join(SCENARIOS)} (all)")
    parser.add_argument("--database-url", help="postgresql+psycopg://postgres@127.0.0.1:5432/NAME: "
                        "a fresh database NAME_<scenario>_<pid> per scenario (default: SQLite)")
    parser.add_argument("--json", type=Path, help="write the per-run results here")
    parser.add_argument("--keep", type=Path, help="keep each scenario's gunicorn/worker log in this folder")
    args = parser.parse_args()
    order = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in order if s not in SCENARIOS]
    if unknown or not order or args.repeat < 1:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}" if unknown
                     else "nothing to run")
    if args.database_url and sa.engine.make_url(args.database_url).host not in LOOPBACK:
        parser.error("--database-url must point at a loopback address")
    signal.signal(signal.SIGTERM, interrupted)

    results: list[dict] = []
    warm_ups: dict[str, dict] = {}
    started, code = time.monotonic(), 0
    with tempfile.TemporaryDirectory(prefix="aiops-bench-scenarios-") as tmp:
        logs = args.keep or Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        try:
            for name in order:
                scenario = SCENARIOS[name]
                with database(name, args.database_url, Path(tmp)) as db_url, \
                        stack(scenario, db_url, logs) as (server, traffic):
                    warm_ups[name] = warm_up(server)
                    print(f"{name}: warmed up in {warm_ups[name]['seconds']}s "
                          f"({len(warm_ups[name]['incidents'])} incident(s) while learning)", flush=True)
                    for n in range(1, args.repeat + 1):
                        results.append({"run": n, **run_once(server, traffic, scenario)})
                        progress(n, args.repeat, results[-1])
        except KeyboardInterrupt:
            print("interrupted: the results so far", flush=True)
            code = 130
        finally:
            rows = summary(results, order)
            print_summary(rows)
            print(f"\ntotal {time.monotonic() - started:.0f}s; database "
                  f"{'PostgreSQL' if args.database_url else 'SQLite'}"
                  + (f"; logs in {logs}" if args.keep else ""))
            if args.json:
                args.json.write_text(json.dumps({
                    "database": "postgresql" if args.database_url else "sqlite", "repeat": args.repeat,
                    "settings": {**ENV, "RATE": RATE, "DETECT_TIMEOUT": DETECT_TIMEOUT},
                    "warm_ups": warm_ups, "summary": rows, "runs": results}, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
