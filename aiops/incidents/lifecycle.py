"""Turning RCA groups into deduplicated incidents, and their lifecycle.

One incident per root cause: a group whose root already has an open incident
updates it (``last_seen``, anomalies, affected endpoints). A group whose root
is already part of an open incident seen within the correlation window (say
checkout, when the incident's root is payment) joins that incident too, so a
trace that arrives a cycle late never opens a second incident.

Lifecycle (all in the cycle's transaction; the caller queues what
:class:`Changes` says must go out): an incident notifies only once it was seen
in ``notify_after_cycles`` cycles (flap suppression); it resolves after
``resolve_after_cycles`` quiet cycles; a recurrence within the cooldown reopens
it, a later one opens a new incident linked to it; severity follows impact and
escalates when the incident keeps recurring or lasts too long, never dropping.
The rules themselves (matching, severity, escalation, titles, episodes) are
pure and live in :mod:`aiops.incidents.rules`; this module applies them to the
incident rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from aiops.detection.rules import WHOLE_SERVICE
from aiops.incidents import cooldowns
from aiops.incidents.errors import InvalidTransition
from aiops.incidents.reports import kind as report_kind
from aiops.incidents.rules import (
    Policy,
    describe,
    episode_anomalies,
    escalation,
    fault_changed,
    from_logs,
    matching_incident,
    severity,
    starved_endpoints,
    traffic_share,
)
from aiops.kinds import Severity
from aiops.rca.analysis import Group
from aiops.store.models import AnomalyRecord, Incident, iso
from telemetry.db import db


@dataclass
class Changes:
    """What a cycle did to incidents, and what must go out because of it."""

    opened: list[Incident] = field(default_factory=list)
    updated: list[Incident] = field(default_factory=list)
    reopened: list[Incident] = field(default_factory=list)
    resolved: list[Incident] = field(default_factory=list)
    # (incident, event) for the notification outbox: trigger, update, resolve.
    notify: list[tuple[Incident, str]] = field(default_factory=list)
    remediate: list[Incident] = field(default_factory=list)
    # Incidents whose current episode began this cycle (opened, reopened, or what fails changed):
    # their severity is settled afresh, not escalated.
    episodes: list[Incident] = field(default_factory=list)
    changed: list[Incident] = field(default_factory=list)  # ... and of those, the ones still open

    @property
    def touched(self) -> list[Incident]:
        return self.opened + self.updated + self.reopened


def add_event(incident: Incident, kind: str, at: float, detail: str, by: str = "aiops") -> None:
    incident.timeline = [*incident.timeline, {"at": iso(at), "event": kind, "by": by, "detail": detail}]


def open_incidents() -> list[Incident]:
    """Locked for the caller's write transaction (PostgreSQL; SQLite's write lock covers it):
    the delivery worker appends to the same timelines."""
    return list(db.session.scalars(select(Incident).where(Incident.status != "resolved").with_for_update()))


def _last_resolved(root: tuple[str, str]) -> Incident | None:
    """The most recently resolved incident about the same root cause."""
    return db.session.scalars(
        select(Incident)
        .where(Incident.status == "resolved", Incident.root_service == root[0],
               Incident.root_endpoint == root[1])
        .order_by(Incident.resolved_at.desc())
        .limit(1)
        .with_for_update()
    ).first()


def _new_episode(incident: Incident, group: Group, now: float) -> str:
    """Describe the incident by what is failing now (title, root issue; severity is settled anew);
    the timeline keeps what it said before. Returns the detail for the timeline."""
    title, issue = describe(group)
    was = incident.title
    incident.title, incident.root_issue = title, issue
    incident.episode_at = now
    incident.severity = Severity.LOW
    return title if title == was else f"{title} (was: {was})"


def _reopen(incident: Incident, group: Group, now: float) -> None:
    quiet = now - (incident.resolved_at or now)
    incident.status = "open"
    incident.resolved_at = None
    incident.clean_cycles = 0
    incident.seen_cycles = 0
    incident.confirmed_at = None  # a recurrence must persist again before it notifies
    incident.reopen_count += 1
    now_failing = _new_episode(incident, group, now)
    add_event(incident, "reopened", now, f"{now_failing}; recurred {round(quiet / 60)} min after it was "
                                      f"resolved (recurrence {incident.reopen_count})")


def _candidates_json(group: Group) -> list[dict]:
    """The group's candidates, best first: ``score`` their share of the blame in this incident,
    ``evidence`` that share of the strength of the cycle's strongest evidence
    (:attr:`Anomaly.evidence_strength`, in decimal digits of improbability), ``pod`` only where the
    evidence names one (:mod:`aiops.rca.pods`). Candidates across incidents rank by ``evidence``: a
    one-candidate blip (share 1.0) does not outrank a fault's root, and an incident updated by a
    weak echo of an earlier fault says so (its earlier strength is not kept)."""
    strength = max((a.evidence_strength for a in group.anomalies), default=0.0)
    return [{"service": s, "endpoint": e or None, "score": score, "evidence": round(strength * score, 2),
             **({"pod": group.pods[s]} if s in group.pods else {})} for (s, e), score in group.candidates]


def _path_json(group: Group, earlier: list[dict] | None = None) -> list[dict]:
    """The group's propagation path, merged into an incident's: a hop keeps its first onset."""
    hops = {(h["service"], h["endpoint"], h["signal"]): h for h in earlier or []}
    for hop in group.path:
        key = (hop["service"], hop["endpoint"], hop["signal"])
        onset = hops[key]["onset"] if key in hops else iso(hop["onset"])
        hops[key] = {**hop, "onset": onset}
    return list(hops.values())


def _new_incident(group: Group, now: float, number: int, previous: Incident | None) -> Incident:
    title, issue = describe(group)
    incident = Incident(
        id=f"INC-{int(now)}-{number}", status="open", severity="low", title=title,
        root_service=group.root[0], root_endpoint=group.root[1], root_issue=issue,
        candidates=_candidates_json(group), affected=group.affected, trace_id=group.example_trace,
        correlated_failures=[a.label for a in group.anomalies], first_detected=now, last_seen=now,
        clean_cycles=0, seen_cycles=0, reopen_count=0, timeline=[],
        related_to=previous.id if previous is not None else None, propagation=_path_json(group),
        episode_at=now,
    )
    detail = title if previous is None else f"{title} (recurrence of {previous.id})"
    add_event(incident, "detected", now, detail)
    return incident


def _merge(incident: Incident, group: Group, now: float) -> None:
    """A group's news for an incident already open: endpoints, failures, candidates."""
    incident.last_seen = now
    incident.clean_cycles = 0
    labels = [a.label for a in group.anomalies]
    new_endpoints = [e for e in group.affected if e not in incident.affected]
    new_labels = [lab for lab in labels if lab not in incident.correlated_failures]
    incident.affected = incident.affected + new_endpoints
    incident.correlated_failures = incident.correlated_failures + new_labels
    if new_endpoints or new_labels:
        add_event(incident, "updated", now, "now also: " + ", ".join(new_labels or new_endpoints))
    if _narrows(incident, group):
        was = incident.title
        incident.root_endpoint = group.root[1]
        incident.title, incident.root_issue = describe(group)
        add_event(incident, "narrowed", now,
                  f"the traces name {group.root[1]}: {incident.title} (was: {was})")
    if (incident.root_service, incident.root_endpoint) == group.root:
        incident.candidates = _candidates_json(group)
        incident.propagation = _path_json(group, incident.propagation)
    incident.trace_id = incident.trace_id or group.example_trace


def _narrows(incident: Incident, group: Group) -> bool:
    """An incident that rests on log lines naming only the service gets the endpoint the traces
    blame, once they do (the lines arrived before the spans: a hung call reports late)."""
    return (incident.root_endpoint == WHOLE_SERVICE and group.root[0] == incident.root_service
            and group.root[1] != WHOLE_SERVICE
            and from_logs(episode_anomalies(incident)))


def _record(incident: Incident, group: Group, now: float) -> None:
    for a in group.anomalies:
        incident.anomalies.append(
            AnomalyRecord(
                service=a.service, endpoint=a.endpoint, type=a.type, observed=a.observed,
                baseline=a.baseline, request_count=a.request_count, message=a.message,
                detected_at=now, trace_ids=a.trace_ids[:5], pattern=a.pattern,
            )
        )


def _settle(incident: Incident, impact: str, now: float, policy: Policy, changes: Changes) -> None:
    """Once per cycle for each incident seen: persistence, confirmation, escalation.

    Severity never drops within an episode: a page that went out as critical
    is not quietly downgraded because one cycle looked milder. A new episode
    (opened, reopened, another fault) starts from its own impact.
    """
    incident.seen_cycles += 1
    steps, why = escalation(incident, now, policy)
    start = impact if incident in changes.episodes else incident.severity
    new_severity = Severity.at(max(Severity(start).rank, Severity(impact).rank + steps))
    raised = new_severity != start
    if raised:
        reasons = why or ([f"spread to {len(incident.affected)} endpoints"] if len(incident.affected) >= 3
                          else ["impact grew"])
        add_event(incident, "escalated", now, f"{start} -> {new_severity}: " + ", ".join(reasons))
    incident.severity = new_severity
    if incident.confirmed_at is None:
        if incident.seen_cycles >= policy.notify_after_cycles and not _cooling(incident, now):
            incident.confirmed_at = now
            add_event(incident, "confirmed", now,
                   f"anomalous in {incident.seen_cycles} cycle{'s' if incident.seen_cycles > 1 else ''}")
            if incident.status == "open":  # an acknowledged one already has someone on it
                changes.notify.append((incident, "trigger"))
                changes.remediate.append(incident)
                incident.paged_at, incident.paged_kind = now, report_kind(incident.to_dict())
    elif raised or incident in changes.changed:
        changes.notify.append((incident, "update"))  # worse, or another fault: say what fails now


def _fold(starved: list[Incident], whole: Incident, now: float, open_ones: list[Incident],
          changes: Changes) -> None:
    """Close the endpoint incidents that were the first signs of a starved service into its
    whole-service incident: their endpoints join it, their timelines say where they went."""
    for incident in starved:
        incident.status = "resolved"
        incident.resolved_at = now
        add_event(incident, "merged", now, f"the whole service is starved: merged into {whole.id}")
        open_ones.remove(incident)
        for done in (changes.opened, changes.updated, changes.reopened, changes.episodes, changes.changed):
            if incident in done:
                done.remove(incident)
        changes.resolved.append(incident)
        new = [e for e in incident.affected if e not in whole.affected]
        whole.affected = whole.affected + new
        add_event(whole, "updated", now, f"took in {incident.id} ({incident.title})")
def _cooling(incident: Incident, now: float) -> bool:
    """A recurrence of the kind this root last paged as, within that kind's cooldown
    (:mod:`aiops.incidents.cooldowns`): held, and said once on the timeline."""
    earlier = incident
    if incident.paged_at is None and incident.related_to:
        earlier = db.session.get(Incident, incident.related_to) or incident
    if earlier.paged_at is None:
        return False
    kind = report_kind(incident.to_dict())
    until = cooldowns.held_until(kind, earlier.paged_kind, earlier.paged_at)
    if until is None or now >= until:
        return False
    since = iso(incident.episode_at if incident.episode_at is not None else incident.first_detected)
    if not any(e["event"] == "cooldown" and e["at"] >= since for e in incident.timeline):
        add_event(incident, "cooldown", now, f"{kind} paged at {iso(earlier.paged_at)}: the page is held "
                  f"until {iso(until)} ({cooldowns.minutes(kind):g} min cooldown)")
    return True


def apply_groups(groups: list[Group], now: float, policy: Policy,
                 total_requests: int | None = None) -> Changes:
    """Open, reopen or update incidents for this cycle's groups (caller commits).

    A group whose root cause was resolved less than ``policy.reopen_cooldown``
    ago reopens that incident; later it opens a new one linked to it.
    """
    open_ones = open_incidents()
    changes = Changes()
    impacts: dict[str, str] = {}
    # Cycles never overlap (the lease), so numbering from the count is unique.
    number = db.session.scalar(select(func.count()).select_from(Incident)) or 0
    for group in groups:
        incident = matching_incident(group, open_ones, now, policy)
        if incident is None:
            previous = _last_resolved(group.root)
            if previous is not None and now - (previous.resolved_at or 0) <= policy.reopen_cooldown:
                incident = previous
                _reopen(incident, group, now)
                _merge(incident, group, now)
                changes.reopened.append(incident)
                changes.episodes.append(incident)
            else:
                number += 1
                incident = _new_incident(group, now, number, previous)
                db.session.add(incident)
                changes.opened.append(incident)
                changes.episodes.append(incident)
            open_ones.append(incident)
        else:
            if incident not in changes.episodes and fault_changed(incident, group):
                add_event(incident, "changed", now, _new_episode(incident, group, now))
                changes.episodes.append(incident)
                changes.changed.append(incident)
            _merge(incident, group, now)
            if incident not in changes.touched:
                changes.updated.append(incident)
        _fold(starved_endpoints(group, open_ones), incident, now, open_ones, changes)
        _record(incident, group, now)
        impact = severity(group.anomalies, len(incident.affected), traffic_share(group, total_requests))
        best = impacts.get(incident.id, Severity.LOW)
        impacts[incident.id] = max(Severity(best), Severity(impact), key=lambda s: s.rank)
    for incident in changes.touched:
        _settle(incident, impacts[incident.id], now, policy, changes)
    return changes


def resolve_quiet(changes: Changes, now: float, policy: Policy) -> Changes:
    """Count a clean cycle for every open incident not touched; resolve after the quiet period.

    Also judges remediation hooks that ran at least one interval ago: did the
    anomaly clear (the incident was quiet this cycle) or not.
    """
    touched_ids = {i.id for i in changes.touched}
    for incident in open_incidents():
        quiet = incident.id not in touched_ids
        if incident.remediation == "ran" and now - (incident.remediation_at or now) >= policy.verify_after:
            incident.remediation = "cleared" if quiet else "persisting"
            add_event(incident, "remediation", now, "the anomaly cleared after the remediation hook ran"
                   if quiet else "the anomaly persists after the remediation hook ran")
        if not quiet:
            continue
        incident.clean_cycles += 1
        if incident.clean_cycles >= policy.resolve_after_cycles:
            incident.status = "resolved"
            incident.resolved_at = now
            add_event(incident, "resolved", now, f"no anomaly for {incident.clean_cycles} cycles")
            changes.resolved.append(incident)
            if incident.confirmed_at is not None:
                changes.notify.append((incident, "resolve"))
    return changes


def transition(incident: Incident, action: str, now: float, by: str, comment: str) -> Incident:
    """Acknowledge or resolve by hand, recorded on the timeline (caller commits); InvalidTransition
    when the incident's state does not allow it."""
    if incident.status == "resolved":
        raise InvalidTransition(f"{incident.id} is already resolved")
    if action == "acknowledge":
        if incident.status == "acknowledged":
            raise InvalidTransition(f"{incident.id} is already acknowledged")
        incident.status = "acknowledged"
    else:
        incident.status = "resolved"
        incident.resolved_at = now
    add_event(incident, f"{action}d", now, comment, by=by)
    return incident
