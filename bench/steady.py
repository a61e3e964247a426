"""Steady demo traffic and nothing wrong, for a while: ``python bench/steady.py --minutes 30``.

The calm half of the promise: with no fault injected, the product should raise nothing. This
runs the production layout of ``bench/scenarios.py`` (gunicorn, one ``flask aiops worker``,
steady checkouts; detection every ``--interval`` s, 2 by default: many more cycles, and so
more chances of a false alarm, than the 30 s default) with two SLOs on the checkout
(availability 99.9 %, and 99 % of requests under ``--latency-ms``, from ``AIOPS_SLO_FILE``).
Every 10 s it reads every incident (active and resolved) and the SLOs' status. At the end it
prints the cycles run, the requests answered, every incident opened (with its kind and title)
and every SLO alert (status ``ticket`` or ``page`` at a look). Exit status 1 when anything was
raised.

Options: ``--minutes M`` (30), ``--interval S`` (2), ``--latency-ms MS`` (500),
``--database-url URL`` (a PostgreSQL server on loopback; default SQLite), ``--json OUT``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

import scenarios as sc  # noqa: E402  (bench/ is on sys.path when run as a script)

LOOK = 10.0  # seconds between looks


def slo_file(folder: Path, latency_ms: float) -> Path:
    path = folder / "slos.json"
    path.write_text(json.dumps([
        {"name": "checkout availability", "service": sc.SERVICE, "endpoint": "checkout",
         "sli": "availability", "objective": 99.9},
        {"name": "checkout latency", "service": sc.SERVICE, "endpoint": "checkout", "sli": "latency",
         "objective": 99.0, "threshold_ms": latency_ms},
    ]))
    return path


def look(server, opened: dict, alerts: list, started: float) -> None:
    """Note every incident not seen before and every SLO not ``ok``."""
    data = sc.h.incidents(server)
    for incident in data["active_incidents"] + data["resolved_incidents"]:
        opened.setdefault(incident["id"], {**sc.brief(incident), "kind": incident.get("kind"),
                                           "at_s": round(time.monotonic() - started)})
    slos = server.get("/aiops/slos", timeout=10)
    slos.raise_for_status()
    for slo in slos.json()["slos"]:
        if slo.get("status") not in (None, "ok"):
            alerts.append({"slo": slo["name"], "status": slo["status"], "burn_rates": slo.get("burn_rates"),
                           "at_s": round(time.monotonic() - started)})


def run(args, tmp: Path) -> dict:
    scenario = sc.Scenario("steady", (), frozenset(),
                           env=(("AIOPS_DETECTION_INTERVAL", args.interval),
                                ("AIOPS_SLO_FILE", str(slo_file(tmp, args.latency_ms)))))
    opened: dict[str, dict] = {}
    alerts: list[dict] = []
    with sc.database("steady", args.database_url, tmp) as db_url, \
            sc.stack(scenario, db_url, tmp) as (server, traffic):
        warm = sc.warm_up(server)
        before = {i["id"] for i in warm["incidents"]}
        first_cycle, started = sc.cycles(server), time.monotonic()
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(LOOK)
            look(server, opened, alerts, started)
            print(f"{(time.monotonic() - started) / 60:.1f} min: {sc.cycles(server) - first_cycle} cycles, "
                  f"{len(set(opened) - before)} incident(s), {len(alerts)} SLO alert look(s)", flush=True)
        slos = server.get("/aiops/slos", timeout=10).json()["slos"]
        return {
            "minutes": args.minutes, "interval_s": args.interval, "cycles": sc.cycles(server) - first_cycle,
            "requests": {str(k): v for k, v in traffic.snapshot().items()},
            "warm_up": warm, "incidents": [v for k, v in opened.items() if k not in before],
            "slo_alerts": alerts,
            "slos": [{k: slo.get(k) for k in ("name", "status", "budget_remaining", "burn_rates")}
                     for slo in slos],
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=sc.INTERVAL)
    parser.add_argument("--latency-ms", type=float, default=500.0)
    parser.add_argument("--database-url", help="postgresql+psycopg://postgres@127.0.0.1:5432/NAME")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    if args.minutes <= 0 or args.interval <= 0:
        parser.error("--minutes and --interval must be positive")
    signal.signal(signal.SIGTERM, sc.interrupted)  # the stack's context managers stop gunicorn and the worker
    try:
        with tempfile.TemporaryDirectory(prefix="aiops-bench-steady-") as tmp:
            result = run(args, Path(tmp))
    except KeyboardInterrupt:
        print("interrupted: nothing to report", flush=True)
        return 130
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(f"\n| minutes | interval (s) | cycles | requests | incidents | SLO alerts |\n"
          f"| ---: | ---: | ---: | --- | ---: | ---: |\n"
          f"| {result['minutes']:g} | {result['interval_s']:g} | {result['cycles']} | {result['requests']} "
          f"| {len(result['incidents'])} | {len(result['slo_alerts'])} |")
    for incident in result["incidents"]:
        print(f"  incident at {incident['at_s']} s: {incident['root']} ({incident['kind']}): "
              f"{incident['title']}")
    for alert in result["slo_alerts"][:20]:
        print(f"  SLO alert at {alert['at_s']} s: {alert['slo']} {alert['status']} {alert['burn_rates']}")
    for slo in result["slos"]:
        print(f"  SLO {slo['name']}: {slo['status']}, budget left {slo['budget_remaining']}")
    return 1 if result["incidents"] or result["slo_alerts"] else 0


if __name__ == "__main__":
    sys.exit(main())
