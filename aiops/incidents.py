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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from aiops import storm
from aiops.detect import WHOLE_SERVICE, Anomaly
from aiops.kinds import AnomalyType, Severity
from aiops.logrca import LOG_MESSAGE
from aiops.models import AnomalyRecord, Incident, iso
from aiops.rca import Group
from aiops.settings import Settings
from telemetry.db import db

MINOR_SHARE = 0.05  # an endpoint carrying less of the traffic than this is a step less severe


@dataclass(frozen=True)
class Policy:
    """The lifecycle settings a cycle applies (defaults and meaning: :class:`aiops.settings.Settings`)."""

    correlation_window: float
    resolve_after_cycles: int
    notify_after_cycles: int
    reopen_cooldown: float
    escalate_after: float
    escalate_reopens: int
    verify_after: float  # a remediation is judged by a cycle whose window starts after it ran
    interval: float = 30.0  # between cycles: "seen last cycle" is within 1.5 of them

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            correlation_window=settings.correlation_window,
            resolve_after_cycles=settings.resolve_after_cycles,
            notify_after_cycles=max(1, settings.notify_after_cycles),
            reopen_cooldown=settings.reopen_cooldown,
            escalate_after=settings.escalate_after,
            escalate_reopens=max(1, settings.escalate_reopens),
            verify_after=settings.detection_interval,
            interval=settings.detection_interval,
        )


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


def severity(anomalies: Iterable[Anomaly], affected: int, share: float | None = None) -> str:
    """Impact-based severity: failures outrank slowness; spreading raises it a step,
    an endpoint that carries under 5% of the traffic lowers it one."""
    level = 0
    for a in anomalies:
        if a.type == AnomalyType.TIMEOUT:
            level = max(level, 3)
        elif a.type == AnomalyType.ERROR:
            level = max(level, 3 if a.observed >= 0.5 else 2)
        elif a.type == AnomalyType.LATENCY and a.baseline:
            ratio = a.observed / a.baseline
            level = max(level, 2 if ratio >= 5 else 1)
    if affected >= 3:
        level = min(level + 1, 3)
    if share is not None and share < MINOR_SHARE:
        level = max(level - 1, 0)
    return Severity.at(level)


def escalation(incident: Incident, now: float, policy: Policy) -> tuple[int, list[str]]:
    """Steps to add for an incident that keeps recurring or lasts too long, and why."""
    steps, why = 0, []
    recurrences = incident.reopen_count // policy.escalate_reopens
    if recurrences:
        steps += recurrences
        why.append(f"recurred {incident.reopen_count} times")
    long_open = int((now - incident.first_detected) // policy.escalate_after)
    if long_open:
        steps += long_open
        why.append(f"open for {round((now - incident.first_detected) / 60)} min")
    return steps, why


def describe(group: Group) -> tuple[str, str]:
    """(title, issue) from the root's own anomaly, or the first one it explains."""
    if group.root == storm.ROOT:
        return storm.describe(group)
    service, endpoint = group.root
    whole = endpoint == WHOLE_SERVICE  # the whole service slowed: its endpoints' anomalies are its own
    own = [a for a in group.anomalies if a.key == group.root or (whole and a.service == service)]
    lead = own[0] if own else group.anomalies[0]
    if whole:
        endpoint = f"{service} (whole service)" + (f": {lead.endpoint}" if lead.endpoint else "")
    if own:
        issue = lead.message if not whole or not lead.endpoint else f"{lead.endpoint}: {lead.message}"
    else:
        issue = f"Blamed by traces of {lead.endpoint}: {lead.message}"
    if lead.type == "latency" and own:
        title = f"{endpoint} latency {lead.observed:.0f}ms (baseline {lead.baseline:.0f}ms)"
    elif lead.type == "error" and own and lead.message.startswith(LOG_MESSAGE):
        title = f"{endpoint} logs changed ({lead.request_count} lines)"
    elif lead.type == "error" and own:
        title = f"{endpoint} errors {lead.observed:.0%} of {lead.request_count} requests"
    elif lead.type == "timeout" and own:
        title = f"{endpoint} timeouts ({lead.observed:.0f} calls)"
    else:
        title = f"{endpoint} is failing its callers ({lead.endpoint or lead.service} {lead.type})"
    return title, issue


def episode_anomalies(incident: Incident) -> list[AnomalyRecord]:
    """The anomalies of the incident's current episode: since it opened, last reopened, or last
    changed what is failing (earlier episodes stay on the timeline and in ``anomalies``)."""
    since = incident.episode_at if incident.episode_at is not None else incident.first_detected
    return [a for a in incident.anomalies if a.detected_at >= since]


def lead_type(incident: Incident) -> str:
    """The type of the anomaly the current episode is about: its root's own, else the first (as in
    ``describe``)."""
    root = (incident.root_service, incident.root_endpoint)
    current = episode_anomalies(incident)
    own = [a for a in current if (a.service, a.endpoint) == root]
    lead = own or current
    return lead[0].type if lead else "unknown"


def add_event(incident: Incident, kind: str, at: float, detail: str, by: str = "aiops") -> None:
    incident.timeline = [*incident.timeline, {"at": iso(at), "event": kind, "by": by, "detail": detail}]


def open_incidents() -> list[Incident]:
    """Locked for the caller's write transaction (PostgreSQL; SQLite's write lock covers it):
    the delivery worker appends to the same timelines."""
    return list(db.session.scalars(select(Incident).where(Incident.status != "resolved").with_for_update()))


def _from_logs(anomalies) -> bool:
    """Raised by log lines alone (no trace anomaly among them)."""
    return all(a.message.startswith(LOG_MESSAGE) for a in anomalies)


def _matching(group: Group, open_ones: list[Incident], now: float, policy: Policy) -> Incident | None:
    """The open incident a group belongs to: the one with its root; else a recent one of the same
    service that already names the root among its affected endpoints, or any recent one of the
    service for log lines that cannot say which endpoint; else, for slowness, the service's
    whole-service incident seen last cycle (a starved service shows on one endpoint or another
    from cycle to cycle; it makes things slow, it does not make them fail)."""
    service, endpoint = group.root
    for inc in open_ones:
        if (inc.root_service, inc.root_endpoint) == group.root:
            return inc
    logs_only = endpoint == WHOLE_SERVICE and _from_logs(group.anomalies)
    slow_only = all(a.type == AnomalyType.LATENCY for a in group.anomalies)
    for inc in open_ones:
        if now - inc.last_seen > policy.correlation_window or inc.root_service != service:
            continue
        if logs_only or (endpoint in inc.affected and inc.root_endpoint != WHOLE_SERVICE):
            return inc
    for inc in open_ones:  # starvation explains slowness, never failures
        if (inc.root_service, inc.root_endpoint) == (service, WHOLE_SERVICE) and slow_only and \
                now - inc.last_seen <= 1.5 * policy.interval:
            return inc
    return None


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


def _changed(incident: Incident, group: Group) -> bool:
    """The root's own anomalies show another kind than the incident describes (it was slow, it now
    fails), in this cycle and the one before: a new episode. Both kinds at once, or one cycle
    without the old kind, keep the description, so it does not flap."""
    root = (incident.root_service, incident.root_endpoint)
    if root != group.root:
        return False
    now_types = {a.type for a in group.anomalies if a.key == root}
    described = lead_type(incident)
    if not now_types or described in now_types:
        return False
    earlier = [a for a in episode_anomalies(incident) if (a.service, a.endpoint) == root]
    if not earlier:
        return False  # blamed by its callers' traces so far: its own anomalies describe it better, same fault
    last = max(a.detected_at for a in earlier)
    return described not in {a.type for a in earlier if a.detected_at == last}


def _candidates_json(group: Group) -> list[dict]:
    return [{"service": s, "endpoint": e or None, "score": score} for (s, e), score in group.candidates]


def _path_json(group: Group, earlier: list[dict] | None = None) -> list[dict]:
    """The group's propagation path, merged into an incident's: a hop keeps its first onset."""
    hops = {(h["service"], h["endpoint"], h["signal"]): h for h in earlier or []}
    for hop in group.path:
        key = (hop["service"], hop["endpoint"], hop["signal"])
        onset = hops[key]["onset"] if key in hops else iso(hop["onset"])
        hops[key] = {**hop, "onset": onset}
    return list(hops.values())


def _share(group: Group, total_requests: int | None) -> float | None:
    """Share of the requests entering the system that the busiest endpoint the group names served."""
    if not total_requests:
        return None
    return min(1.0, max((a.request_count for a in group.anomalies), default=0) / total_requests)


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
            and _from_logs(episode_anomalies(incident)))


def _record(incident: Incident, group: Group, now: float) -> None:
    for a in group.anomalies:
        incident.anomalies.append(
            AnomalyRecord(
                service=a.service, endpoint=a.endpoint, type=a.type, observed=a.observed,
                baseline=a.baseline, request_count=a.request_count, message=a.message,
                detected_at=now, trace_ids=a.trace_ids[:5],
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
        if incident.seen_cycles >= policy.notify_after_cycles:
            incident.confirmed_at = now
            add_event(incident, "confirmed", now,
                   f"anomalous in {incident.seen_cycles} cycle{'s' if incident.seen_cycles > 1 else ''}")
            if incident.status == "open":  # an acknowledged one already has someone on it
                changes.notify.append((incident, "trigger"))
                changes.remediate.append(incident)
    elif raised or incident in changes.changed:
        changes.notify.append((incident, "update"))  # worse, or another fault: say what fails now


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
        incident = _matching(group, open_ones, now, policy)
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
            if incident not in changes.episodes and _changed(incident, group):
                add_event(incident, "changed", now, _new_episode(incident, group, now))
                changes.episodes.append(incident)
                changes.changed.append(incident)
            _merge(incident, group, now)
            if incident not in changes.touched:
                changes.updated.append(incident)
        _record(incident, group, now)
        impact = severity(group.anomalies, len(incident.affected), _share(group, total_requests))
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
    add_event(incident, f"{action}d", now, comment, by=by)
    return incident
