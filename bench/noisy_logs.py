"""Noisy but normal logs for real traces: the log half of ``bench/rca_synthetic.py --logs``.

A network fault leaves the logs alone, and some services' logs vary a lot when
nothing is wrong. This writes, for a trace file, a log file of the same minutes
in which nothing is wrong but a third of the services are *noisy*, so that logs
can only hurt RCA there (traces + logs must score what traces alone do):

- every service logs one INFO line per request it serves (its SERVER spans), on
  the span's trace and span ids, as the TrainTicket services do;
- a noisy service's volume swings: every ``TICK`` seconds a log-normal
  multiplier (sigma ``SWING``) sets how many extra lines a request logs
  (DEBUG-like INFO lines of its own templates), and how many ``retrying``
  WARN lines it writes;
- a noisy service shows templates never seen before: each tick, with chance
  ``CHURN``, a burst of 3 to 10 lines of one template from its pool of rare
  ones (Zipf-like: some recur, most are rare; 60 % INFO, 30 % WARN, 10 %
  ERROR), on random requests of that tick or outside any request.

The same seed gives the same services the same noise in the normal traffic and
in the case, so the noise is stationary: no fault is in the logs.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

SERVER = 2
TICK = 10.0  # seconds between draws of a noisy service's volume and churn
SWING = 0.8  # sigma of the log-normal volume multiplier
CHURN = 0.35  # chance per tick of a burst of a rare template
POOL = 40  # rare templates per noisy service
NOISY_SHARE = 1 / 3
SEVERITY = {"INFO": 9, "WARN": 13, "ERROR": 17}
WORDS = (
    "cache shard replica lease token batch cursor segment pool queue buffer index ledger quota snapshot "
    "session window channel bucket partition stale rebalanced evicted throttled deferred skipped "
    "compacted rotated refreshed expired reloaded pending orphaned drained paused resumed flushed "
    "upstream downstream local remote primary secondary warm cold hot idle busy partial"
).split()


def noisy_services(services: list[str], seed: str) -> set[str]:
    """A third of ``services`` (at least one), the same for every file of one seed."""
    rng = random.Random(f"noisy-logs:{seed}")
    ranked = sorted(services)
    rng.shuffle(ranked)
    return set(ranked[: max(1, round(len(ranked) * NOISY_SHARE))])


def _pool(service: str, seed: str) -> list[tuple[str, str]]:
    """A noisy service's rare templates: (level, words), each a shape Drain keeps apart."""
    rng = random.Random(f"noisy-pool:{seed}:{service}")
    pool = []
    for _ in range(POOL):
        level = rng.choices(("INFO", "WARN", "ERROR"), (0.6, 0.3, 0.1))[0]
        pool.append((level, " ".join(rng.sample(WORDS, rng.randint(4, 9)))))
    return pool


def _record(t_ns: int, level: str, body: str, trace_id: str = "", span_id: str = "") -> dict:
    rec = {
        "timeUnixNano": str(t_ns),
        "observedTimeUnixNano": str(t_ns),
        "body": {"stringValue": body},
        "severityText": level,
        "severityNumber": SEVERITY[level],
    }
    if trace_id:
        rec["traceId"], rec["spanId"] = trace_id, span_id
    return rec


def lines_for(requests: list[dict], seed: str, noisy: set[str]) -> dict[str, list[dict]]:
    """Per service, the log records of the traces in ``requests`` (OTLP/JSON trace requests)."""
    served: dict[str, list[tuple[int, str, str, str]]] = defaultdict(list)
    for request in requests:
        for rs in request.get("resourceSpans", ()):
            service = next(
                (
                    a["value"].get("stringValue", "")
                    for a in rs.get("resource", {}).get("attributes", ())
                    if a.get("key") == "service.name"
                ),
                "",
            )
            for ss in rs.get("scopeSpans", ()):
                for span in ss.get("spans", ()):
                    if span.get("kind") == SERVER:
                        served[service].append(
                            (
                                int(span["startTimeUnixNano"]),
                                span["traceId"],
                                span["spanId"],
                                span.get("name", ""),
                            )
                        )
    out: dict[str, list[dict]] = defaultdict(list)
    for service, spans in sorted(served.items()):
        spans.sort()
        rng = random.Random(f"noisy-lines:{seed}:{service}:{spans[0][0]}")
        pool = _pool(service, seed) if service in noisy else []
        ticks: dict[int, list] = defaultdict(list)
        for t, trace_id, span_id, name in spans:
            out[service].append(
                _record(
                    t + 1_000_000, "INFO", f"handled {name} in {rng.randint(2, 90)} ms", trace_id, span_id
                )
            )
            ticks[int(t / 1e9 // TICK)].append((t, trace_id, span_id))
        for _tick, inside in sorted(ticks.items()) if service in noisy else ():
            swing = rng.lognormvariate(0.0, SWING)
            for t, trace_id, span_id in inside:
                for k in range(_poisson(rng, 1.5 * swing)):
                    out[service].append(
                        _record(
                            t + 2_000_000 + k,
                            "INFO",
                            f"step {rng.choice(WORDS)} done for item {rng.randint(1, 9999)}",
                            trace_id,
                            span_id,
                        )
                    )
            for k in range(_poisson(rng, 2.0 * swing)):
                t, trace_id, span_id = rng.choice(inside)
                out[service].append(
                    _record(
                        t + 3_000_000 + k,
                        "WARN",
                        f"retrying call attempt {rng.randint(1, 3)} after {rng.randint(5, 500)} ms",
                        trace_id,
                        span_id,
                    )
                )
            if rng.random() < CHURN:
                level, words = pool[min(int(rng.paretovariate(1.2)) - 1, POOL - 1)]
                for k in range(rng.randint(3, 10)):
                    t, trace_id, span_id = rng.choice(inside)
                    bound = rng.random() < 0.7
                    out[service].append(
                        _record(
                            t + 4_000_000 + k,
                            level,
                            f"{words} id {rng.randint(1, 99999)}",
                            trace_id if bound else "",
                            span_id if bound else "",
                        )
                    )
    return out


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, limit = 0, 1.0, pow(2.718281828459045, -min(lam, 50.0))
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


def log_requests(per_service: dict[str, list[dict]], seconds: float = 1.0) -> list[dict]:
    """``ExportLogsServiceRequest`` objects, one per ``seconds`` of records (every service in it)."""
    buckets: dict[int, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for service, records in per_service.items():
        for rec in records:
            buckets[int(int(rec["timeUnixNano"]) / 1e9 // seconds)][service].append(rec)
    out = []
    for _, services in sorted(buckets.items()):
        out.append(
            {
                "resourceLogs": [
                    {
                        "resource": {
                            "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                        },
                        "scopeLogs": [
                            {
                                "scope": {"name": "noisy-logs"},
                                "logRecords": sorted(recs, key=lambda r: int(r["timeUnixNano"])),
                            }
                        ],
                    }
                    for service, recs in sorted(services.items())
                ]
            }
        )
    return out


def write_noisy_logs(trace_requests: list[dict], seed: str, noisy: set[str], out: Path, write) -> int:
    """Write the noisy logs of ``trace_requests`` to ``out`` with ``write`` (the bench's gzip writer);
    returns the records written."""
    per_service = lines_for(trace_requests, seed, noisy)
    write(log_requests(per_service), out)
    return sum(len(v) for v in per_service.values())
