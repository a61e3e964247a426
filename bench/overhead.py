"""Request-recording overhead under gunicorn: ``python bench/overhead.py`` (needs ``wrk``).

Three servers of the demo app run side by side, identical but for recording:

- ``off``: ``AIOPS_RECORD_REQUESTS=0`` (the baseline),
- ``lean``: the default recorder (WSGI middleware, span buffer, batched writes),
- ``otel``: ``AIOPS_RECORDER=otel`` (the official Flask instrumentation),

each ``gunicorn -k gthread`` with one worker per CPU, its own SQLite file, the
scheduler off. ``wrk`` (a separate process, C, keep-alive connections, a few
percent of a CPU) drives one endpoint at a time for a fixed duration, the
variants taking turns in a rotating order over several rounds so that drift
(other load, CPU frequency, the database growing) hits them alike:

- ``GET /inventory``, trivial: the demo's simulated work off (``AIOPS_DEMO_WORK=0``),
  so the request is Flask, one fault lookup and the recorder; the worst case;
- ``POST /checkout``, realistic: the demo as shipped (a few ms of simulated work
  per endpoint) calling ``/inventory`` and ``/payment`` over HTTP, so each
  checkout records 5 spans (3 SERVER, 2 CLIENT) with trace propagation.

Printed: requests/s, median p50/p99 latency over the rounds, the ratio of
each recorder's throughput to the unrecorded one (the median over rounds of
the ratio within a round: short turns, many rounds, so a burst of other load
on the machine lands on one turn and not on the verdict), and server CPU time
per request (all gunicorn processes; it barely depends on other load, and
off/recorder CPU is what the throughput ratio would be on a saturated, quiet
machine). Target (issue "Fast enough to leave on"): the default recorder >=
0.95 of unrecorded throughput on both endpoints. The spans each server stored
are counted at the end, to show recording really happened and dropped nothing.

Why wrk: a Python load generator on a 2-CPU machine takes a large share of the
CPU the server is measured on, and its own GIL adds jitter; wrk stays at a few
percent and reports latency percentiles. Install: ``apt-get install wrk``
(Debian/Ubuntu) or ``brew install wrk``.

Options: ``--seconds`` per variant per round (2), ``--rounds`` (15), ``--verbose``,
``--workers`` (CPU count), ``--endpoint`` (``inventory``, ``checkout`` or both).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import GunicornServer, cpu_count, median, print_table, process_tree_cpu, verdict  # noqa: E402

TARGET = 0.95
VARIANTS = {
    "off": {"AIOPS_RECORD_REQUESTS": "0"},
    "lean": {"AIOPS_RECORDER": "lean"},
    "otel": {"AIOPS_RECORDER": "otel"},
}
# endpoint -> (method, path, body, connections, server environment)
ENDPOINTS = {
    # CPU-bound: enough connections to keep both workers busy.
    "inventory": ("GET", "/inventory", None, 8, {"AIOPS_DEMO_WORK": "0"}),
    # A checkout holds a worker thread while its two calls need another: 4
    # concurrent checkouts fit the 8 threads of a worker even if all land on one.
    "checkout": ("POST", "/checkout", '{"amount": 42.0}', 4, {}),
}
SPANS_PER_REQUEST = {"inventory": 1, "checkout": 5}

LUA = """
wrk.method = "%(method)s"
%(body)s
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %%d, "duration_us": %%d, "errors": %%d, "non2xx": %%d, ' ..
    '"p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(url: str, script: Path, connections: int, seconds: float) -> dict:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    return json.loads(line[len("BENCH "):])


def stored_spans(db_file: Path) -> int:
    with sqlite3.connect(db_file) as conn:
        try:
            return conn.execute("SELECT count(*) FROM spans WHERE service != 'aiops'").fetchone()[0]
        except sqlite3.OperationalError:  # no table: nothing recorded yet
            return 0


def bench_endpoint(name: str, args, tmp: Path) -> dict[str, dict]:
    method, path, body, connections, env = ENDPOINTS[name]
    script = tmp / f"{name}.lua"
    script.write_text(LUA % {"method": method, "body": f"wrk.body = '{body}'" if body else ""})
    servers: dict[str, GunicornServer] = {}
    results: dict[str, dict] = {v: {"runs": []} for v in VARIANTS}
    try:
        for variant, extra in VARIANTS.items():
            db_file = tmp / f"{name}-{variant}.db"
            server_env = {"AIOPS_DATABASE_URL": f"sqlite:///{db_file}", "AIOPS_SCHEDULER": "0",
                          "AIOPS_ENABLE_SIMULATION": "1", **env, **extra}
            servers[variant] = GunicornServer(server_env, workers=args.workers, threads=8,
                                              log_path=tmp / f"{name}-{variant}.log").start()
            results[variant]["db"] = db_file
        for server in servers.values():  # warm up: imports, schema, connection pools
            run_wrk(server.url + path, script, connections, 2)
        time.sleep(1.0)  # let the span buffers write the warm-up's spans
        warm = {v: stored_spans(results[v]["db"]) for v in VARIANTS}
        order = list(VARIANTS)
        for n in range(args.rounds):
            turn = order[n % len(order):] + order[: n % len(order)]
            line = []
            for variant in turn:
                cpu0 = process_tree_cpu(servers[variant].proc.pid)
                run = run_wrk(servers[variant].url + path, script, connections, args.seconds)
                cpu1 = process_tree_cpu(servers[variant].proc.pid)
                run["cpu_s"] = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else float("nan")
                results[variant]["runs"].append(run)
                line.append(f"{variant} {run['requests'] / run['duration_us'] * 1e6:,.0f}")
            if args.verbose:
                print(f"  {name} round {n + 1}: " + ", ".join(line) + " req/s", flush=True)
    finally:
        for server in servers.values():
            server.stop()  # flushes the span buffers on the way out
    for variant in VARIANTS:
        results[variant]["spans"] = stored_spans(results[variant]["db"]) - warm[variant]
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--verbose", action="store_true", help="print every round")
    parser.add_argument("--workers", type=int, default=cpu_count())
    parser.add_argument("--endpoint", choices=[*ENDPOINTS, "both"], default="both")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/overhead.py needs wrk, the HTTP load generator, as a separate process:\n"
              "  apt-get install wrk      (Debian/Ubuntu)\n  brew install wrk         (macOS)")
        return 2

    names = list(ENDPOINTS) if args.endpoint == "both" else [args.endpoint]
    print(f"gunicorn: {args.workers} gthread workers x 8 threads per server, {cpu_count()} CPUs; "
          f"wrk: 1 thread; {args.rounds} rounds x {args.seconds:g}s per variant", flush=True)
    table, summary, ok = [], [], True
    with tempfile.TemporaryDirectory(prefix="aiops-bench-overhead-") as tmp:
        for name in names:
            results = bench_endpoint(name, args, Path(tmp))
            method, path = ENDPOINTS[name][:2]
            off = results["off"]["runs"]
            for variant, res in results.items():
                runs = res["runs"]
                served = sum(r["requests"] for r in runs)
                rate = served / sum(r["duration_us"] for r in runs) * 1e6
                # Per round, against the unrecorded server's turn in the same round.
                ratio = median(a["requests"] / a["duration_us"] / (b["requests"] / b["duration_us"])
                               for a, b in zip(runs, off, strict=True))
                cpu = sum(r["cpu_s"] for r in runs) / served * 1e6
                failed = sum(r["errors"] + r["non2xx"] for r in runs)
                expected = served * SPANS_PER_REQUEST[name]
                spans = "-" if variant == "off" else f"{res['spans']:,} / {expected:,}"
                table.append([f"{method} {path}", variant, f"{rate:,.0f}",
                              f"{median(r['p50_us'] for r in runs) / 1000:.2f}",
                              f"{median(r['p99_us'] for r in runs) / 1000:.2f}",
                              f"{ratio:.3f}", f"{cpu:,.0f}", spans, failed])
                ok = ok and failed == 0
                if variant != "off":
                    off_cpu = sum(r["cpu_s"] for r in off) / sum(r["requests"] for r in off) * 1e6
                    summary.append((name, variant, ratio, off_cpu / cpu))

    print()
    print_table(["endpoint", "recorder", "req/s", "p50 ms", "p99 ms", "vs off", "server CPU us/req",
                 "spans stored / expected", "errors"], table)
    print()
    print("vs off: median over rounds of (throughput / the unrecorded server's in the same round);")
    print("CPU ratio: unrecorded server CPU per request / this one's (what throughput would be if CPU-bound)")
    for name, variant, ratio, cpu_ratio in summary:
        print(f"{name}: {variant}/off throughput ratio {ratio:.3f}, CPU ratio {cpu_ratio:.3f}")
    lean = [ratio for name, variant, ratio, _ in summary if variant == "lean"]
    met = ok and all(r >= TARGET for r in lean)
    print(f"target: default (lean) recorder >= {TARGET} of unrecorded throughput on every endpoint: "
          f"{verdict(met)}" + ("" if ok else " (some requests failed)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
