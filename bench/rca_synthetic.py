"""Root-cause accuracy on synthetic network faults in real traces: ``python bench/rca_synthetic.py``.

The TrainTicket development set has code and CPU faults but no network fault.
This bench makes some: it takes the case files whose fault is ``return`` (code
faults that leave no trace-level signal, per ``bench/trainticket_study``, so
their traces are effectively normal traffic), picks a target service that has
callers, and from the case's ``inject_time`` on re-times every affected trace
as a network delay on the target's pod would have:

- ``answers`` (only the pod's answers are delayed): every CLIENT span whose
  SERVER child belongs to the target ends ``d`` later; the target's SERVER
  span is unchanged (it sits inside the call; the gap between them grows);
- ``all`` (all of the pod's traffic): in addition, every CLIENT span *of* the
  target (its outgoing calls) ends ``d`` later, so the target's SERVER spans
  grow by what they waited for.

A delayed span's ancestors that were still open when it ended end ``d`` later,
and every other span of the trace that started at or after its (pre-delay) end
moves ``d`` later (later siblings and their subtrees, later work of the
ancestors). Delays of one trace are applied in time order, so several delayed
calls in one trace add up. A call is affected when it ended (before re-timing)
at or after ``inject_time``. ``d`` is a base delay drawn per case (100, 300,
800 or 2000 ms) with +-20 % jitter per call. Everything else of the file is
kept as it was (same lines, same JSON, same order).

Each synthetic case then replays ``normal.otlp.jsonl.gz`` and the modified file
with the real CLI exactly as ``bench/rca_trainticket.py`` does, and is scored
the dataset README's way: incidents raised from the start of the case file
on, their candidates' services ranked. Prints AC@1, AC@3 and Avg@5 overall,
per variant and per delay; per-case lines go to stderr.

``--logs both`` also replays each case with noisy but normal logs (``bench/noisy_logs.py``: a
third of the services' log volume and templates vary in normal operation, no fault is in
them) and prints traces only and traces + logs side by side: logs must never make it worse
(``--logs only``: just the second; ``off``, the default: traces only).

Options: ``--dataset DIR``, ``--cases N`` (default 24), ``--seed S`` (default 1),
``--jobs N`` (parallel replays, default 2), ``--json OUT`` (per-case results),
``--root DIR`` (the checkout whose code replays; default this one), ``--keep DIR``
(keep the modified trace files there), ``--control`` (also replay each background
unmodified and score it against the same targets: what RCA ranks with no fault at
all, the floor to read the figures against).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import noisy_logs  # noqa: E402
from rca_trainticket import (  # noqa: E402
    DEFAULT_DATASET,
    ROOT,
    log_only,
    never_hurt,
    ranked_services,
    replay_incidents,
    scores,
)

CLIENT, SERVER = 3, 2
VARIANTS = ("answers", "all")
DELAYS_MS = (100, 300, 800, 2000)
JITTER = 0.2
QUIET_PER_MIN = 10.0  # a target with fewer calls a minute than this is "quiet" in the table

Span = dict  # one OTLP/JSON span object, mutated in place
Trace = dict[str, tuple[str, Span]]  # spanId -> (service.name, span)


# -- reading and writing OTLP/JSON lines ----------------------------------------------------------


def read_requests(path: Path) -> list[dict]:
    """The file's ``ExportTraceServiceRequest`` lines, parsed, in order (gzip or plain)."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_requests(requests: Iterable[dict], path: Path) -> None:
    """Write lines as the Collector's file exporter does (compact JSON, one request a line), gzipped."""
    with gzip.open(path, "wb") as f:
        for request in requests:
            f.write(json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")


def _service(resource: dict) -> str:
    for attr in resource.get("attributes", ()):
        if attr.get("key") == "service.name":
            return attr["value"].get("stringValue", "")
    return ""


def traces_of(requests: list[dict], duplicates: dict[tuple[str, str], list[Span]] | None = None
              ) -> dict[str, Trace]:
    """traceId -> spanId -> (service, span), in the order traces first appear.

    A span repeated in the file (same trace and span id; exporters resend) is
    indexed by its first copy; the later copies go into ``duplicates``, if given.
    """
    traces: dict[str, Trace] = {}
    for request in requests:
        for rs in request.get("resourceSpans", ()):
            service = _service(rs.get("resource", {}))
            for ss in rs.get("scopeSpans", ()):
                for span in ss.get("spans", ()):
                    trace = traces.setdefault(span["traceId"], {})
                    if span["spanId"] not in trace:
                        trace[span["spanId"]] = (service, span)
                    elif duplicates is not None:
                        duplicates.setdefault((span["traceId"], span["spanId"]), []).append(span)
    return traces


# -- the fault -----------------------------------------------------------------------------------


def delayed_calls(trace: Trace, target: str, variant: str, inject_ns: int) -> list[str]:
    """The CLIENT spans the fault delays, earliest (pre-fault) end first."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} (one of {', '.join(VARIANTS)})")
    into_target = {span.get("parentSpanId") for service, span in trace.values()
                   if span.get("kind") == SERVER and service == target}
    chosen = []
    for span_id, (service, span) in trace.items():
        if span.get("kind") != CLIENT or int(span["endTimeUnixNano"]) < inject_ns:
            continue
        if span_id in into_target or (variant == "all" and service == target):
            chosen.append(span_id)
    chosen.sort(key=lambda s: (int(trace[s][1]["endTimeUnixNano"]), int(trace[s][1]["startTimeUnixNano"]), s))
    return chosen


def retime_trace(trace: Trace, delayed: list[str], delay_ns: Callable[[], int]) -> None:
    """Delay each span of ``delayed`` (in that order) by ``delay_ns()`` and re-time the trace around it."""
    if not delayed:
        return
    times = {sid: [int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])]
             for sid, (_, span) in trace.items()}
    parent = {sid: span.get("parentSpanId") for sid, (_, span) in trace.items()}
    children: dict[str, list[str]] = defaultdict(list)
    for sid, pid in parent.items():
        if pid:
            children[pid].append(sid)
    for sid in delayed:
        d = delay_ns()
        end = times[sid][1]  # its end before this delay (earlier delays included)
        times[sid][1] += d
        # Ancestors still open when the call ended waited for it.
        ancestors = set()
        pid = parent[sid]
        while pid in times and pid not in ancestors:
            ancestors.add(pid)
            if times[pid][1] >= end:
                times[pid][1] += d
            pid = parent[pid]
        # The call's own subtree (the callee's work) is not moved: it happened before the answer.
        subtree, todo = {sid}, [sid]
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in subtree:
                    subtree.add(child)
                    todo.append(child)
        for other, t in times.items():
            if t[0] >= end and other not in subtree and other not in ancestors:
                t[0] += d
                t[1] += d
    for sid, (_, span) in trace.items():
        span["startTimeUnixNano"], span["endTimeUnixNano"] = str(times[sid][0]), str(times[sid][1])


def inject_network_fault(requests: list[dict], target: str, variant: str, inject_ns: int,
                         delay_ns: Callable[[], int]) -> dict:
    """Re-time ``requests`` in place for a network fault on ``target`` from ``inject_ns`` on.

    ``delay_ns`` is called once per delayed call, in a fixed order (traces as they
    first appear in the file, calls by end time), so a seeded draw is reproducible.
    """
    calls = traces = 0
    duplicates: dict[tuple[str, str], list[Span]] = {}
    indexed = traces_of(requests, duplicates)
    for trace in indexed.values():
        delayed = delayed_calls(trace, target, variant, inject_ns)
        if delayed:
            retime_trace(trace, delayed, delay_ns)
            calls += len(delayed)
            traces += 1
    for (trace_id, span_id), copies in duplicates.items():  # a repeated span keeps matching its first copy
        first = indexed[trace_id][span_id][1]
        for span in copies:
            span["startTimeUnixNano"] = first["startTimeUnixNano"]
            span["endTimeUnixNano"] = first["endTimeUnixNano"]
    return {"delayed_calls": calls, "traces": traces}


def jittered(base_ms: float, rng: random.Random, jitter: float = JITTER) -> Callable[[], int]:
    """A per-call delay draw: ``base_ms`` +- ``jitter`` (uniform), in ns."""
    return lambda: round(base_ms * rng.uniform(1 - jitter, 1 + jitter) * 1e6)


# -- planning the cases --------------------------------------------------------------------------


def _ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) * 1_000_000_000


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def callee_profile(requests: list[dict], inject_ns: int) -> dict:
    """Calls a minute after ``inject_ns`` into each service called from another one; the file's start."""
    calls: Counter[str] = Counter()
    first = last = None
    for trace in traces_of(requests).values():
        for service, span in trace.values():
            start = int(span["startTimeUnixNano"])
            first = start if first is None else min(first, start)
            last = start if last is None else max(last, start)
            if span.get("kind") != SERVER or start < inject_ns:
                continue
            parent = trace.get(span.get("parentSpanId", ""))
            if parent is not None and parent[0] != service:
                calls[service] += 1
    minutes = max((last or 0) - inject_ns, 60_000_000_000) / 60e9
    return {"per_min": {s: round(n / minutes, 1) for s, n in calls.items()}, "file_start": first or 0}


def plan_cases(meta: dict, dataset: Path, n: int, seed: int) -> list[dict]:
    """``n`` synthetic cases, deterministic from ``seed``.

    Backgrounds cycle over the ``return`` cases; variant x delay cycle over the full
    grid (each round shuffled); targets cycle over every service that has callers in
    the used backgrounds, quiet or busy (each round shuffled), skipping a background's
    own faulty service and services not called after its injection.
    """
    rng = random.Random(f"rca-synthetic:{seed}")
    backgrounds = sorted((c for c in meta["cases"] if c["fault"] == "return"), key=lambda c: c["case"])
    if not backgrounds:
        raise SystemExit("no `return` case to use as background traffic in cases.json")
    rng.shuffle(backgrounds)
    chosen = [backgrounds[i % len(backgrounds)] for i in range(n)]
    profiles = {}
    for bg in {c["case"]: c for c in chosen}.values():
        profiles[bg["case"]] = callee_profile(read_requests(dataset / bg["file"]), _ns(bg["inject_time"]))
    services = sorted({s for p in profiles.values() for s in p["per_min"]})
    grid = [(v, d) for v in VARIANTS for d in DELAYS_MS]
    combos: list[tuple[str, int]] = []
    targets: list[str] = []
    plan = []
    for i, bg in enumerate(chosen):
        if not combos:
            combos = rng.sample(grid, len(grid))
        variant, delay = combos.pop()
        profile = profiles[bg["case"]]
        valid = [s for s in services if s in profile["per_min"] and s != bg["root_cause_service"]]
        if not any(t in valid for t in targets):
            targets = rng.sample(services, len(services))
        target = next(t for t in targets if t in valid)
        targets.remove(target)
        plan.append({
            "case": f"syn{i + 1:02d}-{target}-{variant}-{delay}ms",
            "background": bg["case"], "background_file": bg["file"], "inject_time": bg["inject_time"],
            "since": _iso(profile["file_start"]), "target": target, "variant": variant, "delay_ms": delay,
            "calls_per_min": profile["per_min"][target], "seed": f"{seed}:{i}",
        })
    return plan


# -- running -------------------------------------------------------------------------------------


def build_case_file(case: dict, dataset: Path, out: Path, logs: tuple[Path, str, set] | None = None) -> dict:
    """The re-timed case file at ``out``; with ``logs`` ``(path, seed, noisy services)``, its noisy
    logs there too."""
    requests = read_requests(dataset / case["background_file"])
    rng = random.Random(f"rca-synthetic-delays:{case['seed']}")
    stats = inject_network_fault(requests, case["target"], case["variant"], _ns(case["inject_time"]),
                                 jittered(case["delay_ms"], rng))
    write_requests(requests, out)
    if logs is not None:
        noisy_logs.write_noisy_logs(requests, logs[1], logs[2], logs[0], write_requests)
    return stats


def normal_logs(normal: Path, workdir: Path, seed: int) -> tuple[Path, set[str]]:
    """The normal traffic's noisy logs (written once a run) and which services are noisy."""
    requests = read_requests(normal)
    services = sorted({_service(rs.get("resource", {})) for r in requests
                       for rs in r.get("resourceSpans", ())})
    noisy = noisy_logs.noisy_services(services, str(seed))
    path = workdir / "normal.noisy.logs.otlp.jsonl.gz"
    noisy_logs.write_noisy_logs(requests, str(seed), noisy, path, write_requests)
    return path, noisy


def run_synthetic(case: dict, dataset: Path, normal: str, workdir: Path, root: Path,
                  logs: tuple[Path, int, set[str]] | None = None) -> dict:
    """One case; with ``logs`` ``(normal logs file, seed, noisy services)``, replayed with noisy logs."""
    suffix = ".logs" if logs else ""
    path = workdir / f"{case['case']}{suffix}.otlp.jsonl.gz"
    case_logs = workdir / f"{case['case']}.noisy.logs.otlp.jsonl.gz"
    stats = build_case_file(case, dataset, path, (case_logs, str(logs[1]), logs[2]) if logs else None)
    incidents, elapsed = replay_incidents([dataset / normal, path], case["case"], root,
                                          logs=[logs[0], case_logs] if logs else None)
    truth = case["target"]
    ranking = ranked_services(incidents, case["since"])
    rank = ranking.index(truth) + 1 if truth in ranking else None
    # For reference only: the same incidents scored from the (known) start of the synthetic fault.
    late = ranked_services(incidents, case["inject_time"])
    onset = ranked_services(incidents, case["since"], by_onset=True)
    return {**case, **stats, "truth": truth, "rank": rank, "top3": ranking[:3],
            "rank_from_inject": late.index(truth) + 1 if truth in late else None,
            "rank_by_onset": onset.index(truth) + 1 if truth in onset else None,
            "top3_from_inject": late[:3], "incidents": len(incidents),
            "incident_keys": incident_keys(incidents), "log_only": log_only(incidents),
            "seconds": round(elapsed, 1)}


def incident_keys(incidents: list[dict]) -> list[list]:
    """What a report's incidents were, to compare with the fault-free control run."""
    return sorted([i["first_detected"] or "", i["title"], [c["service"] for c in i["root_cause_candidates"]]]
                  for i in incidents)


def with_control(result: dict, control: list[dict]) -> dict:
    """Score the control run (the background unmodified) against the same target: the noise floor."""
    ranking = ranked_services(control, result["since"])
    truth = result["truth"]
    return {**result, "rank_control": ranking.index(truth) + 1 if truth in ranking else None,
            "top3_control": ranking[:3], "same_as_control": result["incident_keys"] == incident_keys(control)}


def print_tables(results: list[dict], label: str = "") -> None:
    rows = [("all synthetic cases", results)]
    for variant in VARIANTS:
        rows.append((f"variant {variant}", [r for r in results if r["variant"] == variant]))
    for delay in DELAYS_MS:
        rows.append((f"delay {delay} ms", [r for r in results if r["delay_ms"] == delay]))
    rows.append((f"quiet target (<{QUIET_PER_MIN:g} calls/min)",
                 [r for r in results if r["calls_per_min"] < QUIET_PER_MIN]))
    rows.append((f"busy target (>={QUIET_PER_MIN:g} calls/min)",
                 [r for r in results if r["calls_per_min"] >= QUIET_PER_MIN]))
    print(f"\n{label:40} {'cases':>5} {'AC@1':>7} {'AC@3':>7} {'Avg@5':>7}")
    for name, rs in rows:
        if rs:
            s = scores(rs)
            print(f"{name:40} {s['n']:>5} {s['AC@1']:>7.2%} {s['AC@3']:>7.2%} {s['Avg@5']:>7.2%}")
    extra = [("(all, scored from inject_time instead)", "rank_from_inject"),
             ("(all, README order: earliest first)", "rank_by_onset")]
    if results and "rank_control" in results[0]:
        extra.append(("control: no fault, same targets", "rank_control"))
    for name, key in extra:
        s = scores([{**r, "rank": r[key]} for r in results])
        print(f"{name:40} {s['n']:>5} {s['AC@1']:>7.2%} {s['AC@3']:>7.2%} {s['Avg@5']:>7.2%}")
    if results and "same_as_control" in results[0]:
        same = sum(r["same_as_control"] for r in results)
        print(f"cases whose incidents equal the fault-free control run's (fault not seen at all): "
              f"{same} of {len(results)}")
    print(f"\n{'variant x delay: AC@1 (AC@3)':40} " + " ".join(f"{f'{d} ms':>13}" for d in DELAYS_MS))
    for variant in VARIANTS:
        cells = []
        for delay in DELAYS_MS:
            rs = [r for r in results if r["variant"] == variant and r["delay_ms"] == delay]
            s = scores(rs)
            cells.append(f"{s['AC@1']:.2f} ({s['AC@3']:.2f}) n{len(rs)}" if rs else "-")
        print(f"{variant:40} " + " ".join(f"{c:>13}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose code replays")
    parser.add_argument("--keep", type=Path, default=None, help="keep the modified trace files here")
    parser.add_argument("--control", action="store_true",
                        help="also replay each background unmodified and score it against the same targets")
    parser.add_argument("--logs", choices=("off", "both", "only"), default="off",
                        help="also (both) or only replay with noisy but normal logs (bench/noisy_logs.py)")
    args = parser.parse_args()

    meta = json.loads((args.dataset / "cases.json").read_text())
    plan = plan_cases(meta, args.dataset, args.cases, args.seed)
    print(f"replaying {len(plan)} synthetic network-fault cases (seed {args.seed}) with the code at "
          f"{args.root.resolve()} ({args.jobs} at a time)", file=sys.stderr)
    modes = {"off": [False], "only": [True], "both": [False, True]}[args.logs]
    runs: dict[bool, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="aiops-synth-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        normal = args.dataset / meta["normal_traffic"]
        logs = None
        if True in modes:
            logs_file, noisy = normal_logs(normal, workdir, args.seed)
            logs = (logs_file, args.seed, noisy)
            print(f"noisy logs at {', '.join(sorted(noisy))}", file=sys.stderr)
        for with_logs in modes:
            runs[with_logs] = run_plan(plan, args, meta, normal, workdir, logs if with_logs else None)
    for with_logs, results in runs.items():
        print_tables(results, "traces + noisy logs" if with_logs else "traces only")
    if len(runs) == 2:
        never_hurt(runs[False], runs[True], "variant")
    if args.json:
        out = {("with_logs" if k else "traces_only"): {"results": v, "overall": scores(v)}
               for k, v in runs.items()}
        args.json.write_text(json.dumps(out, indent=2))


def run_plan(plan: list[dict], args, meta: dict, normal: Path, workdir: Path, logs) -> list[dict]:
    results: list[dict] = []
    label = "logs" if logs else "traces"
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        controls = {}
        if args.control:
            for c in plan:
                if c["background"] not in controls:
                    controls[c["background"]] = pool.submit(
                        replay_incidents, [normal, args.dataset / c["background_file"]],
                        f"control {c['background']}", args.root)
        futures = [pool.submit(run_synthetic, c, args.dataset, meta["normal_traffic"], workdir, args.root,
                               logs) for c in plan]
        for i, fut in enumerate(futures, 1):
            r = fut.result()
            ctl = ""
            if args.control:
                r = with_control(r, controls[r["background"]].result()[0])
                ctl = f" ctl={r['rank_control']!s:<4}{' unseen' if r['same_as_control'] else ''}"
            results.append(r)
            print(f"[{label} {i:2}/{len(plan)}] {r['target']:<30} {r['variant']:<7} {r['delay_ms']:>5}ms "
                  f"{r['calls_per_min']:>6}/min {r['delayed_calls']:>4} calls rank={r['rank']!s:<4}{ctl} "
                  f"top3={r['top3']} ({r['incidents']} incidents, {r['seconds']}s; bg {r['background']})",
                  file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
