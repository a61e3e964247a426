"""Root-cause accuracy on the TrainTicket fault cases: ``python bench/rca_trainticket.py``.

For each case of ``../shared/datasets/trainticket/cases.json`` this replays the
normal traffic and then the case into a fresh SQLite database with the real
CLI (``flask --app app aiops replay normal case --report out.json``), takes the
incidents first detected at or after the fault's ``inject_time`` (in the order
they were detected), and ranks the services of their ``root_cause_candidates``
best first without repeats. It prints AC@1, AC@3 and Avg@5 overall and per
fault type next to the dataset README's reference figures.

Options: ``--dataset DIR``, ``--cases N`` (first N only), ``--jobs N`` (parallel
replays, default 2), ``--json OUT`` (per-case results).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "trainticket"
REFERENCE = {
    "Nezha (traces + logs + metrics)": {"AC@1": 0.8667, "AC@3": 0.9778},
    "trace-only: median SERVER-span growth": {"AC@1": 0.21, "AC@3": 0.25},
}


def raised_at(incident: dict, inject_time: str) -> str | None:
    """When the incident was first raised at/after the injection: detected, or reopened (a recurrence)."""
    if (incident.get("first_detected") or "") >= inject_time:
        return incident["first_detected"]
    reopened = [e["at"] for e in incident.get("timeline", [])
                if e.get("event") == "reopened" and e["at"] >= inject_time]
    return min(reopened, default=None)


def ranked_services(incidents: list[dict], inject_time: str) -> list[str]:
    """Services of the candidates of incidents raised (detected or reopened) at/after the injection."""
    after = [(at, i) for i in incidents if (at := raised_at(i, inject_time)) is not None]
    after.sort(key=lambda p: (p[0], -max((c["score"] for c in p[1]["root_cause_candidates"]), default=0)))
    services: list[str] = []
    for _, incident in after:
        for cand in incident["root_cause_candidates"]:
            if cand["service"] not in services:
                services.append(cand["service"])
    return services


def replay_incidents(files: list[Path], name: str, root: Path = ROOT) -> tuple[list[dict], float]:
    """Replay ``files`` in order into a fresh SQLite DB with the real CLI of the checkout at ``root``.

    Returns the report's incidents and the seconds the replay took.
    """
    with tempfile.TemporaryDirectory(prefix="aiops-rca-") as tmp:
        report = Path(tmp) / "report.json"
        env = {**os.environ, "AIOPS_DATABASE_URL": f"sqlite:///{tmp}/aiops.db"}
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "aiops", "replay",
             *map(str, files), "--report", str(report)],
            cwd=root, env=env, capture_output=True, text=True,
        )
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"replay of {name} failed:\n{proc.stderr[-2000:]}")
        return json.loads(report.read_text())["incidents"], elapsed


def run_case(case: dict, dataset: Path, normal: str) -> dict:
    incidents, elapsed = replay_incidents([dataset / normal, dataset / case["file"]], case["case"])
    ranking = ranked_services(incidents, case["inject_time"])
    truth = case["root_cause_service"]
    rank = ranking.index(truth) + 1 if truth in ranking else None
    return {"case": case["case"], "fault": case["fault"], "truth": truth, "rank": rank,
            "top3": ranking[:3], "incidents": len(incidents), "seconds": round(elapsed, 1)}


def scores(results: list[dict]) -> dict[str, float]:
    n = len(results) or 1
    ac = {k: sum(1 for r in results if r["rank"] is not None and r["rank"] <= k) / n for k in range(1, 6)}
    return {"AC@1": ac[1], "AC@3": ac[3], "Avg@5": sum(ac.values()) / 5, "n": len(results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--cases", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    meta = json.loads((args.dataset / "cases.json").read_text())
    cases = meta["cases"][: args.cases]
    print(f"replaying {len(cases)} cases from {args.dataset} ({args.jobs} at a time)", file=sys.stderr)
    results: list[dict] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_case, c, args.dataset, meta["normal_traffic"]) for c in cases]
        for i, fut in enumerate(futures, 1):
            r = fut.result()
            results.append(r)
            print(f"[{i:2}/{len(cases)}] {r['case']:<52} rank={r['rank']!s:<4} top3={r['top3']} "
                  f"({r['incidents']} incidents, {r['seconds']}s)", file=sys.stderr)

    by_fault: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_fault[r["fault"]].append(r)
    print(f"\n{'':40} {'cases':>5} {'AC@1':>7} {'AC@3':>7} {'Avg@5':>7}")
    rows = [("this project: all", scores(results))]
    rows += [(f"this project: {fault}", scores(rs)) for fault, rs in sorted(by_fault.items())]
    for name, s in rows:
        print(f"{name:40} {s['n']:>5} {s['AC@1']:>7.2%} {s['AC@3']:>7.2%} {s['Avg@5']:>7.2%}")
    for name, ref in REFERENCE.items():
        print(f"{name:40} {'':>5} {ref['AC@1']:>7.2%} {ref['AC@3']:>7.2%} {'':>7}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "overall": scores(results)}, indent=2))


if __name__ == "__main__":
    main()
