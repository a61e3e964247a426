"""Chart pages against a big store: ``python bench/pages.py`` (``--spans 50000`` for a quick run).

Seeds a SQLite store with ``--spans`` spans (1,000,000) spread over the last 7 days, as a
demo-like installation keeps them: ``--endpoints`` (4) busy endpoints of one service, each span a
SERVER span of one of them, and one CLIENT span in five (a caller's call, named after its callee,
which the series must leave out); a 2 % error rate, log-normal latencies, and one stretch of 40
minutes, 3 hours ago, where the first endpoint is 8x slower on one of its three pods and an
incident is open on it. Each span carries attributes as OTLP ingest stores them (its pod, host,
version and route: about 100 bytes of JSON). The baselines are learned. The rows go in with raw
``executemany``, the indexes dropped during the load and rebuilt as the schema defines them (as
``bench/detect.py`` does).

Then it times, in process (Flask's test client: the server's own time, no network), the median of
``--rounds`` (7) GETs after one warm-up each:

- the endpoint page of the busiest endpoint (default range, 1 h) and at 7 days;
- ``GET /aiops/series`` at 15 min, 6 h and 7 d;
- a poll answered 304 (``If-None-Match``: what an open page costs between cycles);
- the incident page (the root endpoint's chart around the incident, the affected endpoints', and
  what changed);
- ``GET /aiops/changes`` (what changed) at 1 h and 7 d, around the incident (whose top factor must
  be the slow pod; the bench says which it found) and for the whole service at 7 d;
- the dashboard; and the live pages' own polls (``static/live.js``: the dashboard, the incident and
  the endpoint page asked again with their ETag, every 2 s per open tab), each a 304 between cycles.

The endpoint pages include their "What changed" table too.

Target: each page and series within 300 ms at 1M spans (``MET``/``NOT MET`` per line).
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
from common import bulk_load, median, print_table, span_insert_sql, verdict  # noqa: E402

TARGET_MS = 300.0
SERVICE = "shop"
KIND_SERVER, KIND_CLIENT = 2, 3
WEEK = 7 * 86_400
SLOW_FROM, SLOW_TO = 3 * 3600, 3 * 3600 - 40 * 60  # seconds before now
PODS = 3
SLOW_POD = "shop-7d9f-2"  # the pod the slow stretch is on


def attributes(name: str, pod: int) -> str:
    from telemetry.attributes import encode

    return encode({"k8s.pod.name": f"shop-7d9f-{pod}", "host.name": f"node-{pod % 2}",
                   "service.version": "1.4.2", "http.route": name.split(" ", 1)[1]})


def endpoints(n: int) -> list[str]:
    return [f"GET /api/op{i}" for i in range(n)]


def make_rows(first: int, count: int, total: int, names: list[str], now: float) -> list[tuple]:
    """Span rows ``first .. first + count`` of ``total`` in SPAN_FIELDS order, evenly over the last
    week, oldest first (ids grow with time, as in a live store)."""
    rnd = random.Random(first)
    attrs = {(name, pod): attributes(name, pod) for name in names for pod in range(PODS)}
    rows = []
    for i in range(first, first + count):
        start = now - WEEK + (i + rnd.random()) * WEEK / total
        name = names[i % len(names)]
        ms = rnd.lognormvariate(3.0, 0.5)
        pod = i % PODS
        if name == names[0] and now - SLOW_FROM <= start < now - SLOW_TO and f"shop-7d9f-{pod}" == SLOW_POD:
            ms *= 8
        kind = KIND_CLIENT if i % 5 == 4 else KIND_SERVER
        failed = rnd.random() < 0.02
        rows.append((f"{rnd.getrandbits(128):032x}", f"{rnd.getrandbits(64):016x}", None, SERVICE, name,
                     kind, "GET", 500 if failed else 200, failed, start, ms, None, None, None, None,
                     attrs[name, pod]))
    return rows


def seed_store(path: Path, spans: int, names: list[str], now: float):
    from aiops.store.models import Baseline
    from aiops.store.schema import ensure_schema
    from app import create_app
    from telemetry.db import begin_write, db
    from tests.support.factories import add_incident

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "AIOPS_SCHEDULER": False,
                      "AIOPS_RECORD_REQUESTS": False})
    with app.app_context():
        ensure_schema()
    from telemetry.columns import SPAN_FIELDS

    sql = span_insert_sql(SPAN_FIELDS)
    chunk = 100_000
    bulk_load(path, ("spans",), lambda conn: [
        conn.executemany(sql, make_rows(done, min(chunk, spans - done), spans, names, now))
        for done in range(0, spans, chunk)])
    with app.app_context():
        begin_write()
        for name in names:
            db.session.add(Baseline(service=SERVICE, endpoint=name, latency_ms=22.0, error_rate=0.02,
                                    samples=100_000, windows=1000, updated_at=now))
        db.session.commit()
    add_incident(app, "INC-bench", at=now - SLOW_TO, first_detected=now - SLOW_FROM, root_endpoint=names[0],
                 affected=names[:3], title=f"{names[0]} latency 180ms (baseline 22ms)")
    return app


def timed(client, url: str, rounds: int, headers: dict | None = None,
          status: int = 200) -> tuple[float, float]:
    """Median wall and CPU milliseconds of a GET (CPU: this process's, SQLite's work included; on a
    shared machine the wall time also counts the waits for a CPU)."""
    response = client.get(url, headers=headers or {})  # warm-up (and a check)
    assert response.status_code == status, (url, response.status_code, response.data[:300])
    samples, cpu = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        response = client.get(url, headers=headers or {})
        samples.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        assert response.status_code == status
    return median(samples), median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--endpoints", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    from urllib.parse import quote, urlencode

    from telemetry.db import db

    names = endpoints(args.endpoints)
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="aiops-bench-pages-") as folder:
        t0 = time.perf_counter()
        app = seed_store(Path(folder) / "pages.db", args.spans, names, now)
        each = args.spans * 4 // 5 // args.endpoints
        print(f"seeded {args.spans:,} spans over 7 days ({args.endpoints} endpoints, about {each:,} SERVER "
              f"spans each) in {time.perf_counter() - t0:.1f} s", flush=True)
        client = app.test_client()
        page = f"/services/{SERVICE}/endpoints/{quote(names[0])}"

        def series(since: str) -> str:
            return "/aiops/series?" + urlencode({"service": SERVICE, "endpoint": names[0], "since": since})

        def changes(**args) -> str:
            return "/aiops/changes?" + urlencode({"service": SERVICE, "endpoint": names[0], **args})

        around = {"since": f"{now - SLOW_FROM - 900:.0f}", "until": f"{now - SLOW_TO:.0f}"}
        top = client.get(changes(**around)).get_json()
        found = top["factors"][0] if top["factors"] else {}
        which = "the slow pod" if found.get("value") == SLOW_POD else "NOT the slow pod"
        print(f"what changed around the incident: bad {top['bad']}, good {top['good']}; top factor "
              f"{found.get('field')}={found.get('value')} (bad {found.get('bad_share')}, good "
              f"{found.get('good_share')}): {which}", flush=True)
        tag = client.get(series("6h")).headers["ETag"]
        cases = [
            ("endpoint page (1h)", page, {}, 200),
            ("endpoint page (7d)", page + "?since=7d", {}, 200),
            ("/aiops/series 15m", series("15m"), {}, 200),
            ("/aiops/series 6h", series("6h"), {}, 200),
            ("/aiops/series 7d", series("7d"), {}, 200),
            ("/aiops/series 6h, poll (304)", series("6h"), {"If-None-Match": tag}, 304),
            ("incident page", "/incidents/INC-bench", {}, 200),
            ("dashboard", "/", {}, 200),
            ("/aiops/changes 1h", changes(since="1h"), {}, 200),
            ("/aiops/changes 7d", changes(since="7d"), {}, 200),
            ("/aiops/changes around the incident", changes(**around), {}, 200),
            ("/aiops/changes whole service 7d", "/aiops/changes?" + urlencode({"service": SERVICE,
                                                                                "since": "7d"}), {}, 200),
        ]
        live = (("dashboard", "/"), ("incident page", "/incidents/INC-bench"), ("endpoint page", page))
        for label, url in live:
            tag = client.get(url).headers["ETag"]
            cases.append((f"{label}, live poll (304)", url, {"If-None-Match": tag}, 304))
        rows = []
        for label, url, headers, status in cases:
            ms, cpu = timed(client, url, args.rounds, headers, status)
            rows.append([label, f"{ms:.1f}", f"{cpu:.1f}", verdict(ms <= TARGET_MS)])
            print(f"  {label}: {ms:.1f} ms (CPU {cpu:.1f} ms)", flush=True)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    print()
    print(f"median of {args.rounds} GETs (in process), {args.spans:,} spans stored; "
          f"target {TARGET_MS:.0f} ms")
    print(f"load average while it ran: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    print_table(["case", "median ms", "CPU ms", f"<= {TARGET_MS:.0f} ms"], rows)


if __name__ == "__main__":
    main()
