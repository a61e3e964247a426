"""Root-cause accuracy on the TrainTicket fault cases: ``python bench/rca_trainticket.py``.

For each case of ``../shared/datasets/trainticket/cases.json`` this replays the
normal traffic and then the case into a fresh SQLite database with the real
CLI (``flask --app app aiops replay normal case --report out.json``), takes the
incidents that show the fault as the dataset README scores them (opened,
reopened or given new anomalies from the case file's first span on, earliest
first), and ranks the services of their ``root_cause_candidates`` best first
without repeats. It prints AC@1, AC@3 and Avg@5 overall and per fault type
next to the dataset README's reference figures, and the overall figures when
the window opens at the recorded ``inject_time`` instead (which can lag the
fault).

With ``--logs both`` (the default) it also checks that logs never hurt: per fault
type, AC@1 and AC@3 with logs at least those of traces alone, the cases ranked
worse with logs, and the incidents raised by log lines alone.

Options: ``--dataset DIR``, ``--cases N`` (first N only), ``--jobs N`` (parallel
replays, default 2), ``--json OUT`` (per-case results), ``--logs both|only|off``,
``--metrics off|on|both`` (replay each case's metrics file too: in every run, or as one more run),
``--root DIR`` (the checkout whose code replays; default this one).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "trainticket"
LOG_MESSAGE = "Log pattern change: "  # aiops.logs.clues.LOG_MESSAGE: an anomaly raised by log lines alone
REFERENCE = {
    "Nezha (traces + logs + metrics)": {"AC@1": 0.8667, "AC@3": 0.9778},
    "trace-only: median SERVER-span growth": {"AC@1": 0.21, "AC@3": 0.25},
}


def raised_at(incident: dict, since: str) -> str | None:
    """When the incident first showed the fault at/after ``since``: detected, reopened (a
    recurrence) or given new anomalies (updated), as the dataset README scores it."""
    if (incident.get("first_detected") or "") >= since:
        return incident["first_detected"]
    later = [e["at"] for e in incident.get("timeline", [])
             if e.get("event") in ("reopened", "updated") and e["at"] >= since]
    return min(later, default=None)


def file_start(path: Path) -> str:
    """The case file's first span start (ISO UTC): where the dataset README opens the scoring window."""
    first = None
    with gzip.open(path, "rt") as lines:
        for line in lines:
            for rs in json.loads(line).get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        t = int(span["startTimeUnixNano"])
                        first = t if first is None or t < first else first
    return datetime.fromtimestamp((first or 0) / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ranked_services(incidents: list[dict], since: str, by_onset: bool = False) -> list[str]:
    """Services of the candidates of incidents raised at/after ``since``, by the strength of their
    evidence across incidents (``evidence``; the earliest incident first where it ties or is absent).
    ``by_onset``: the dataset README's order instead, the earliest incident's candidates first."""
    after = [(at, i) for i in incidents if (at := raised_at(i, since)) is not None]
    after.sort(key=lambda p: (p[0], -max((c["score"] for c in p[1]["root_cause_candidates"]), default=0)))
    ranked = [(0.0 if by_onset else -cand.get("evidence", 0.0), n, m, cand["service"])
              for n, (_, incident) in enumerate(after)
              for m, cand in enumerate(incident["root_cause_candidates"])]
    services: list[str] = []
    for *_, service in sorted(ranked):
        if service not in services:
            services.append(service)
    return services


def replay_incidents(files: list[Path], name: str, root: Path = ROOT,
                     logs: list[Path] | None = None, metrics: list[Path] | None = None
                     ) -> tuple[list[dict], float]:
    """Replay ``files`` in order into a fresh SQLite DB with the real CLI of the checkout at ``root``;
    with ``logs`` (one log file per trace file) and ``metrics`` (one metrics file per trace file),
    each trace file is followed by its log and metrics files and the replay merges them on the
    data's own clock.

    Returns the report's incidents and the seconds the replay took.
    """
    with tempfile.TemporaryDirectory(prefix="aiops-rca-") as tmp:
        report = Path(tmp) / "report.json"
        env = {**os.environ, "AIOPS_DATABASE_URL": f"sqlite:///{tmp}/aiops.db"}
        started = time.perf_counter()
        command = [sys.executable, "-m", "flask", "--app", "app", "aiops", "replay"]
        beside = [extra for extra in (logs, metrics) if extra]
        paths = [p for group in zip(files, *beside, strict=True) for p in group]
        proc = subprocess.run(
            [*command, *map(str, paths), "--report", str(report)],
            cwd=root, env=env, capture_output=True, text=True,
        )
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"replay of {name} failed:\n{proc.stderr[-2000:]}")
        return json.loads(report.read_text())["incidents"], elapsed


def run_case(case: dict, dataset: Path, normal: str, normal_logs: str | None = None,
             normal_metrics: str | None = None, root: Path = ROOT) -> dict:
    """One case, with logs when ``normal_logs`` is given (and the case has its ``logs_file``), with
    metrics when ``normal_metrics`` is (and it has its ``metrics_file``)."""
    logs = ([dataset / normal_logs, dataset / case["logs_file"]]
            if normal_logs and case.get("logs_file") else None)
    metrics = ([dataset / normal_metrics, dataset / case["metrics_file"]]
               if normal_metrics and case.get("metrics_file") else None)
    incidents, elapsed = replay_incidents([dataset / normal, dataset / case["file"]], case["case"], root,
                                          logs=logs, metrics=metrics)
    truth = case["root_cause_service"]
    ranking = ranked_services(incidents, file_start(dataset / case["file"]))
    late = ranked_services(incidents, case["inject_time"])
    onset = ranked_services(incidents, file_start(dataset / case["file"]), by_onset=True)
    return {"case": case["case"], "fault": case["fault"], "truth": truth,
            "rank": ranking.index(truth) + 1 if truth in ranking else None,
            "rank_by_onset": onset.index(truth) + 1 if truth in onset else None,
            "rank_from_inject": late.index(truth) + 1 if truth in late else None,
            "top3": ranking[:3], "incidents": len(incidents), "log_only": log_only(incidents),
            "seconds": round(elapsed, 1)}


def log_only(incidents: list[dict]) -> int:
    """Incidents raised by log lines alone (every anomaly a log pattern change)."""
    return sum(1 for i in incidents
               if i.get("anomalies") and all((a.get("message") or "").startswith(LOG_MESSAGE)
                                             for a in i["anomalies"]))


def never_hurt(traces: list[dict], with_logs: list[dict], by: str) -> bool:
    """Logs must never make it worse: AC@1 and AC@3 with logs at least those of traces alone, overall
    and per ``by`` (the fault type, the variant); prints the cases ranked worse with logs."""
    print(f"\n{'logs never hurt (AC@1/AC@3)':40} {'traces':>13} {'+ logs':>13}")
    ok = True
    for name in [None, *sorted({r[by] for r in traces})]:
        a = scores([r for r in traces if name in (None, r[by])])
        b = scores([r for r in with_logs if name in (None, r[by])])
        fine = b["AC@1"] >= a["AC@1"] and b["AC@3"] >= a["AC@3"]
        ok &= fine
        label = name or "all cases"
        print(f"{label:40} {a['AC@1']:>6.2f}/{a['AC@3']:<6.2f} {b['AC@1']:>6.2f}/{b['AC@3']:<6.2f} "
              f"{'ok' if fine else 'WORSE'}")
    worse = [(t["case"], t["rank"], w["rank"]) for t, w in zip(traces, with_logs, strict=True)
             if (w["rank"] or 99) > (t["rank"] or 99)]
    print(f"cases ranked worse with logs: {len(worse)}"
          + "".join(f"\n  {c}: rank {a} -> {b}" for c, a, b in worse))
    print(f"incidents over the replays: traces {sum(r['incidents'] for r in traces)}, + logs "
          f"{sum(r['incidents'] for r in with_logs)} (raised by log lines alone: "
          f"{sum(r.get('log_only', 0) for r in with_logs)}); logs never hurt: {'MET' if ok else 'NOT MET'}")
    return ok


def scores(results: list[dict]) -> dict[str, float]:
    n = len(results) or 1
    ac = {k: sum(1 for r in results if r["rank"] is not None and r["rank"] <= k) / n for k in range(1, 6)}
    return {"AC@1": ac[1], "AC@3": ac[3], "Avg@5": sum(ac.values()) / 5, "n": len(results)}


def label_of(with_logs: bool, with_metrics: bool) -> str:
    return "traces" + (" + logs" if with_logs else "") + (" + metrics" if with_metrics else "") \
        if with_logs or with_metrics else "traces only"


def run_all(cases: list[dict], dataset: Path, meta: dict, jobs: int, with_logs: bool,
            with_metrics: bool = False, root: Path = ROOT) -> list[dict]:
    label = label_of(with_logs, with_metrics)
    normal_logs = meta.get("normal_logs") if with_logs else None
    normal_metrics = meta.get("normal_metrics") if with_metrics else None
    results: list[dict] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_case, c, dataset, meta["normal_traffic"], normal_logs, normal_metrics,
                               root)
                   for c in cases]
        for i, fut in enumerate(futures, 1):
            r = fut.result()
            results.append(r)
            print(f"[{label} {i:2}/{len(cases)}] {r['case']:<52} rank={r['rank']!s:<4} top3={r['top3']} "
                  f"({r['incidents']} incidents, {r['log_only']} from logs alone, {r['seconds']}s)",
                  file=sys.stderr)
    return results


def table(results: list[dict], label: str) -> None:
    by_fault: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_fault[r["fault"]].append(r)
    rows = [(f"{label}: all", scores(results))]
    rows += [(f"{label}: {fault}", scores(rs)) for fault, rs in sorted(by_fault.items())]
    code = [r for r in results if r["fault"] in ("exception", "return")]
    rows.append((f"{label}: code faults", scores(code)))
    for name, s in rows:
        print(f"{name:40} {s['n']:>5} {s['AC@1']:>7.2%} {s['AC@3']:>7.2%} {s['Avg@5']:>7.2%}")
    for name, key in (("(all, window from inject_time)", "rank_from_inject"),
                      ("(all, README order: earliest first)", "rank_by_onset")):
        s = scores([{**r, "rank": r.get(key)} for r in results])
        print(f"{name:40} {s['n']:>5} {s['AC@1']:>7.2%} {s['AC@3']:>7.2%} {s['Avg@5']:>7.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--cases", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--logs", choices=("both", "only", "off"), default="both",
                        help="with the dataset's logs too (both), with logs only, or traces only")
    parser.add_argument("--metrics", choices=("off", "on", "both"), default="off",
                        help="also with the dataset's metrics files: not (off), in every run (on), or as "
                             "one more run, with logs when there are any (both)")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose code replays")
    args = parser.parse_args()

    meta = json.loads((args.dataset / "cases.json").read_text())
    cases = meta["cases"][: args.cases]
    has_logs = bool(meta.get("normal_logs")) and all(c.get("logs_file") for c in cases)
    modes = {"off": [False], "only": [True], "both": [False, True]}[args.logs if has_logs else "off"]
    print(f"replaying {len(cases)} cases from {args.dataset} ({args.jobs} at a time)", file=sys.stderr)
    has_metrics = bool(meta.get("normal_metrics")) and all(c.get("metrics_file") for c in cases)
    metrics = args.metrics if has_metrics else "off"
    plan = [(logs, metrics == "on") for logs in modes]
    if metrics == "both":
        plan.append((max(modes), True))
    runs = {mode: run_all(cases, args.dataset, meta, args.jobs, *mode, root=args.root) for mode in plan}
    print(f"\n{'':40} {'cases':>5} {'AC@1':>7} {'AC@3':>7} {'Avg@5':>7}")
    for mode, results in runs.items():
        table(results, label_of(*mode))
    for name, ref in REFERENCE.items():
        print(f"{name:40} {'':>5} {ref['AC@1']:>7.2%} {ref['AC@3']:>7.2%} {'':>7}")
    on = metrics == "on"
    if (False, on) in runs and (True, on) in runs:
        never_hurt(runs[(False, on)], runs[(True, on)], "fault")
    if args.json:
        out = {label_of(*k).replace(" + ", "_").replace(" ", "_"): {"results": v, "overall": scores(v)}
               for k, v in runs.items()}
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
