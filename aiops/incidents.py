"""Turning RCA groups into deduplicated incidents, and resolving quiet ones.

One incident per root cause: a group whose root already has an open incident
updates it (``last_seen``, anomalies, affected endpoints). A group whose root
is already part of an open incident seen within the correlation window (say
checkout, when the incident's root is payment) joins that incident too, so a
trace that arrives a cycle late never opens a second incident.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from aiops.detect import Anomaly
from aiops.models import AnomalyRecord, Incident, iso
from aiops.rca import Group
from telemetry.db import db

SEVERITIES = ("low", "medium", "high", "critical")


def severity(anomalies: Iterable[Anomaly], affected: int) -> str:
    """Impact-based severity: failures outrank slowness; spreading raises it a step."""
    level = 0
    for a in anomalies:
        if a.type == "timeout":
            level = max(level, 3)
        elif a.type == "error":
            level = max(level, 3 if a.observed >= 0.5 else 2)
        elif a.type == "latency" and a.baseline:
            ratio = a.observed / a.baseline
            level = max(level, 2 if ratio >= 5 else 1)
    if affected >= 3:
        level = min(level + 1, 3)
    return SEVERITIES[level]


def describe(group: Group) -> tuple[str, str]:
    """(title, issue) from the root's own anomaly, or the first one it explains."""
    own = [a for a in group.anomalies if a.key == group.root]
    lead = own[0] if own else group.anomalies[0]
    endpoint = group.root[1]
    if own:
        issue = lead.message
    else:
        issue = f"Blamed by traces of {lead.endpoint}: {lead.message}"
    if lead.type == "latency" and own:
        title = f"{endpoint} latency {lead.observed:.0f}ms (baseline {lead.baseline:.0f}ms)"
    elif lead.type == "error" and own:
        title = f"{endpoint} errors {lead.observed:.0%} of {lead.request_count} requests"
    elif lead.type == "timeout" and own:
        title = f"{endpoint} timeouts ({lead.observed:.0f} calls)"
    else:
        title = f"{endpoint} is failing its callers ({lead.endpoint} {lead.type})"
    return title, issue


def lead_type(incident: Incident) -> str:
    """The type of the anomaly an incident is about: its root's own, else the first (as in ``describe``)."""
    root = (incident.root_service, incident.root_endpoint)
    own = [a for a in incident.anomalies if (a.service, a.endpoint) == root]
    lead = own or incident.anomalies
    return lead[0].type if lead else "unknown"


def _event(incident: Incident, kind: str, at: float, detail: str, by: str = "aiops") -> None:
    incident.timeline = [*incident.timeline, {"at": iso(at), "event": kind, "by": by, "detail": detail}]


def open_incidents() -> list[Incident]:
    return list(db.session.scalars(select(Incident).where(Incident.status != "resolved")))


def _matching(group: Group, open_ones: list[Incident], now: float, window: float) -> Incident | None:
    service, endpoint = group.root
    for inc in open_ones:
        if (inc.root_service, inc.root_endpoint) == group.root:
            return inc
    for inc in open_ones:
        if now - inc.last_seen <= window and inc.root_service == service and endpoint in inc.affected:
            return inc
    return None


def _candidates_json(group: Group) -> list[dict]:
    return [{"service": s, "endpoint": e, "score": score} for (s, e), score in group.candidates]


def apply_groups(groups: list[Group], now: float, correlation_window: float) -> tuple[list, list]:
    """Open or update incidents for this cycle's groups (caller commits). Returns (opened, updated)."""
    open_ones = open_incidents()
    opened, updated = [], []
    # Cycles never overlap (the lease), so numbering from the count is unique.
    number = db.session.scalar(select(func.count()).select_from(Incident)) or 0
    for group in groups:
        incident = _matching(group, open_ones, now, correlation_window)
        labels = [a.label for a in group.anomalies]
        if incident is None:
            title, issue = describe(group)
            number += 1
            incident = Incident(
                id=f"INC-{int(now)}-{number}",
                status="open",
                severity=severity(group.anomalies, len(group.affected)),
                title=title,
                root_service=group.root[0],
                root_endpoint=group.root[1],
                root_issue=issue,
                candidates=_candidates_json(group),
                affected=group.affected,
                trace_id=group.example_trace,
                correlated_failures=labels,
                first_detected=now,
                last_seen=now,
                clean_cycles=0,
                timeline=[],
            )
            _event(incident, "detected", now, title)
            db.session.add(incident)
            open_ones.append(incident)
            opened.append(incident)
        else:
            incident.last_seen = now
            incident.clean_cycles = 0
            new_endpoints = [e for e in group.affected if e not in incident.affected]
            new_labels = [lab for lab in labels if lab not in incident.correlated_failures]
            incident.affected = incident.affected + new_endpoints
            incident.correlated_failures = incident.correlated_failures + new_labels
            if new_endpoints or new_labels:
                _event(incident, "updated", now, "now also: " + ", ".join(new_labels or new_endpoints))
            if (incident.root_service, incident.root_endpoint) == group.root:
                incident.candidates = _candidates_json(group)
            incident.trace_id = incident.trace_id or group.example_trace
            new_severity = severity(group.anomalies, len(incident.affected))
            if SEVERITIES.index(new_severity) > SEVERITIES.index(incident.severity):
                _event(incident, "escalated", now, f"{incident.severity} -> {new_severity}")
                incident.severity = new_severity
            if incident not in updated and incident not in opened:
                updated.append(incident)
        for a in group.anomalies:
            incident.anomalies.append(
                AnomalyRecord(
                    service=a.service, endpoint=a.endpoint, type=a.type, observed=a.observed,
                    baseline=a.baseline, request_count=a.request_count, message=a.message,
                    detected_at=now, trace_ids=a.trace_ids[:5],
                )
            )
    return opened, updated


def resolve_quiet(touched: Iterable[Incident], now: float, after_cycles: int) -> list[Incident]:
    """Count a clean cycle for every open incident not touched; resolve after ``after_cycles``."""
    touched_ids = {i.id for i in touched}
    resolved = []
    for incident in open_incidents():
        if incident.id in touched_ids:
            continue
        incident.clean_cycles += 1
        if incident.clean_cycles >= after_cycles:
            incident.status = "resolved"
            incident.resolved_at = now
            _event(incident, "resolved", now, f"no anomaly for {incident.clean_cycles} cycles")
            resolved.append(incident)
    return resolved


class TransitionError(ValueError):
    """The incident is not in a state that allows the requested change (a 409)."""


def transition(incident: Incident, action: str, now: float, by: str, comment: str) -> Incident:
    """Acknowledge or resolve by hand, recorded on the timeline (caller commits)."""
    if incident.status == "resolved":
        raise TransitionError(f"{incident.id} is already resolved")
    if action == "acknowledge":
        if incident.status == "acknowledged":
            raise TransitionError(f"{incident.id} is already acknowledged")
        incident.status = "acknowledged"
    else:
        incident.status = "resolved"
        incident.resolved_at = now
    _event(incident, f"{action}d", now, comment, by=by)
    return incident
