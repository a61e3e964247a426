"""Scoring a run: pure functions from ground truth and incident lists (the API's JSON) to figures.

For one fault, the incidents that count are those *opened*, *reopened* or
*given new anomalies* (timeline ``detected``, ``reopened``, ``updated``)
between its injection and its clear plus a grace of one detection interval,
earliest first. Their candidates' services, in that order and without
repeats, are the lab's ranking: AC@k is 1 when the true service is among the
first k. Detection time is the first such event minus the injection, also in
detection cycles. An incident opened or reopened in a fault-free period (the
gap after a fault's grace, the dedicated fault-free period) is a false
incident.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime

EVIDENCE = ("detected", "reopened", "updated")
OPENING = ("detected", "reopened")


def epoch(text: str) -> float:
    """An API time (ISO 8601 UTC, ``Z`` or offset) as epoch seconds."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def events(incident: dict, kinds: tuple[str, ...]) -> list[float]:
    """Times of the incident's timeline events of ``kinds`` (``first_detected`` if it has no timeline)."""
    timeline = incident.get("timeline") or []
    times = [epoch(e["at"]) for e in timeline if e.get("event") in kinds and e.get("at")]
    if not timeline and "detected" in kinds and incident.get("first_detected"):
        times.append(epoch(incident["first_detected"]))
    return sorted(times)


def in_window(incidents: list[dict], start: float, end: float, kinds: tuple[str, ...] = EVIDENCE
              ) -> list[tuple[float, dict]]:
    """(first event time in [start, end], incident) for incidents with such an event, earliest first."""
    found = []
    for incident in incidents:
        times = [t for t in events(incident, kinds) if start <= t <= end]
        if times:
            found.append((times[0], incident))
    return sorted(found, key=lambda pair: pair[0])


def ranking(incidents: list[dict]) -> list[str]:
    """Candidate services of ``incidents`` (earliest first), best first, without repeats: by the
    strength of their evidence across incidents (``evidence``), then in the incidents' order."""
    ranked = []
    for n, incident in enumerate(incidents):
        candidates = incident.get("root_cause_candidates") or []
        if not candidates and incident.get("root_cause"):
            candidates = [incident["root_cause"]]
        ranked += [(-(c.get("evidence") or 0.0), n, m, c.get("service")) for m, c in enumerate(candidates)]
    services: list[str] = []
    for *_, service in sorted(ranked):
        if service and service not in services:
            services.append(service)
    return services


def score_fault(truth: dict, incidents: list[dict], interval: float) -> dict:
    """One ground-truth record (``target``, ``injected_at``, ``cleared_at``) against the incidents."""
    start, end = truth["injected_at"], truth["cleared_at"] + interval
    found = in_window(incidents, start, end)
    services = ranking([incident for _, incident in found])
    rank = services.index(truth["target"]) + 1 if truth["target"] in services else None
    detected = bool(found)
    seconds = found[0][0] - start if detected else None
    return {
        "id": truth["id"], "type": truth["type"], "variant": truth["variant"], "target": truth["target"],
        "detected": detected,
        "detection_s": round(seconds, 2) if seconds is not None else None,
        "detection_cycles": round(seconds / interval, 2) if seconds is not None else None,
        "rank": rank,
        "ac1": int(rank is not None and rank <= 1),
        "ac3": int(rank is not None and rank <= 3),
        "ranking": services[:5],
        "incidents": [incident["id"] for _, incident in found],
    }


def false_incidents(incidents: list[dict], periods: list[tuple[float, float]]) -> list[dict]:
    """Incidents opened or reopened inside any fault-free period: (id, at, root) per opening."""
    found = []
    for incident in incidents:
        for at in events(incident, OPENING):
            if any(start <= at <= end for start, end in periods):
                root = (incident.get("root_cause") or {})
                found.append({"id": incident["id"], "at": iso(at),
                              "root": f"{root.get('service')}.{root.get('endpoint')}"})
    return sorted(found, key=lambda f: f["at"])


def summarize(rows: list[dict], false_by_type: dict[str, int] | None = None) -> dict:
    """Per fault type and in total: cases, detected, detection s/cycles (median, max), AC@1, AC@3."""
    false_by_type = false_by_type or {}
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["type"], []).append(row)
    summary = {kind: _figures(group, false_by_type.get(kind, 0)) for kind, group in groups.items()}
    summary["all"] = _figures(rows, sum(false_by_type.values()))
    return summary


def _figures(rows: list[dict], false_count: int) -> dict:
    seconds = [r["detection_s"] for r in rows if r["detection_s"] is not None]
    cycles = [r["detection_cycles"] for r in rows if r["detection_cycles"] is not None]
    n = len(rows)
    return {
        "cases": n,
        "detected": sum(r["detected"] for r in rows),
        "median_detection_s": round(statistics.median(seconds), 1) if seconds else None,
        "max_detection_s": round(max(seconds), 1) if seconds else None,
        "median_detection_cycles": round(statistics.median(cycles), 2) if cycles else None,
        "max_detection_cycles": round(max(cycles), 2) if cycles else None,
        "ac1": round(sum(r["ac1"] for r in rows) / n, 3) if n else None,
        "ac3": round(sum(r["ac3"] for r in rows) / n, 3) if n else None,
        "false_incidents": false_count,
    }
