"""``python -m bench.faultlab run --topology FILE --faults all --report OUT.json``

``--quick`` is the CI configuration (short interval, warm-up and holds, a few
faults); without it the defaults are the full benchmark. Any option given
explicitly wins over the preset.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import requests

from bench.common import print_table, verdict
from bench.faultlab import faults
from bench.faultlab.run import Config, execute
from bench.faultlab.topology import TopologyError

FULL = {"faults": "all", "rate": 10.0, "interval": 10.0, "warmup": 180.0, "hold": 75.0, "gap": 60.0,
        "settle_cap": 180.0, "fault_free": 600.0}
QUICK = {"faults": "exception,down,delay-answers", "rate": 8.0, "interval": 4.0, "warmup": 50.0, "hold": 24.0,
         "gap": 12.0, "settle_cap": 40.0, "fault_free": 0.0}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.faultlab", description="Prove RCA on many faults.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the lab and write a report")
    run.add_argument("--topology", type=Path, required=True, help="topology TOML file")
    run.add_argument("--report", type=Path, required=True, help="report JSON (ground truth beside it)")
    run.add_argument("--faults", help=f"'all' or a comma list of: {', '.join(faults.TYPES)}")
    run.add_argument("--quick", action="store_true", help="the short CI configuration")
    run.add_argument("--seed", type=int, default=1, help="chooses targets and sizes (1)")
    run.add_argument("--targets", default="", help="comma list of services faults may target (default: "
                                                   "every non-entry service)")
    run.add_argument("--rounds", type=int, default=1, help="times each fault type is injected (1)")
    run.add_argument("--rate", type=float, help="entry requests per second (10; quick 8)")
    run.add_argument("--interval", type=float, help="the product's detection interval, s (10; quick 4)")
    run.add_argument("--warmup", type=float, help="s of traffic before the first fault (180; quick 50)")
    run.add_argument("--hold", type=float, help="s each fault lasts (75; quick 24)")
    run.add_argument("--gap", type=float,
                     help="s of fault-free traffic after each fault's grace (60; quick 12)")
    run.add_argument("--settle-cap", type=float, help="s a gap may last waiting for incidents to resolve "
                                                      "(180; quick 40)")
    run.add_argument("--fault-free", type=float, help="s of the dedicated fault-free period (600; quick 0)")
    run.add_argument("--product", help="URL of a running product (its interval must match --interval); "
                                       "default: start one on a fresh SQLite database")
    run.add_argument("--product-env", action="append", default=[], metavar="KEY=VALUE",
                     help="extra AIOPS_* setting for the product the lab starts (repeatable)")
    run.add_argument("--workdir", type=Path, help="where logs, ports and the database go (a new temp dir)")
    return p


def config_from(args: argparse.Namespace) -> Config:
    preset = QUICK if args.quick else FULL
    value = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in preset.items()}
    env = {}
    for item in args.product_env:
        key, sep, val = item.partition("=")
        if not sep or not key.startswith("AIOPS_"):
            raise ValueError(f"--product-env {item!r} is not AIOPS_NAME=VALUE")
        env[key] = val
    if value["interval"] <= 0 or value["rate"] <= 0 or args.rounds < 1:
        raise ValueError("--interval, --rate and --rounds must be positive")
    sizes = {k: v for k, v in value.items() if k != "faults"}
    return Config(topology=args.topology, report=args.report, faults=faults.parse_types(value["faults"]),
                  seed=args.seed, rounds=args.rounds,
                  targets=tuple(t.strip() for t in args.targets.split(",") if t.strip()),
                  product_url=args.product, product_env=env,
                  workdir=args.workdir, **sizes)


def print_report(report: dict) -> None:
    headers = ["fault type", "cases", "detected", "median s", "max s", "median cycles", "max cycles",
               "AC@1", "AC@3", "false incidents"]
    rows = []
    for kind, f in report["summary"].items():
        rows.append([kind, f["cases"], f["detected"], _n(f["median_detection_s"]), _n(f["max_detection_s"]),
                     _n(f["median_detection_cycles"]), _n(f["max_detection_cycles"]), _n(f["ac1"]),
                     _n(f["ac3"]), f["false_incidents"]])
    free = report["fault_free"]
    rows.append(["fault-free period", f"{free['seconds']} s", *[""] * 7, free["false_incidents"]])
    print_table(headers, rows)
    total = report["summary"].get("all")
    if total and total["cases"]:
        print()
        print(f"AC@1 >= 0.9: {verdict(total['ac1'] >= 0.9)}   AC@3 = 1.0: {verdict(total['ac3'] >= 1.0)}   "
              f"detected within 2 cycles: {verdict(_within(report, 2.0))}   "
              f"0 false incidents: {verdict(report['false_incidents_total'] == 0)}")


def _within(report: dict, cycles: float) -> bool:
    return all(r["detected"] and r["detection_cycles"] <= cycles for r in report["faults"])


def _n(value) -> str:
    return "-" if value is None else f"{value:g}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = config_from(args)
        report = execute(config)
    except (TopologyError, ValueError) as exc:
        print(f"faultlab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, OSError, requests.RequestException) as exc:  # a child died, a port was taken ...
        print(f"faultlab: {exc}", file=sys.stderr)
        return 1
    print_report(report)
    print(f"\nreport: {config.report}   ground truth: {report['ground_truth']}")
    json.dumps(report)  # the report was written by execute(); fail loudly here if it is not JSON
    return 0
