"""The incident rules, pure: which open incident a group belongs to, how bad an incident is, when it
escalates, what it is called, and when what fails has changed (a new episode).

Plain values in and out: incidents are read as objects, never queried or written here;
:mod:`aiops.incidents.lifecycle` applies these rules to the rows in the cycle's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiops.detection.rules import WHOLE_SERVICE, Anomaly
from aiops.incidents import storm
from aiops.kinds import AnomalyType, Severity
from aiops.logs.clues import LOG_MESSAGE
from aiops.rca.analysis import Group

if TYPE_CHECKING:
    from aiops.settings import Settings
    from aiops.store.models import AnomalyRecord, Incident

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
        )


def from_logs(anomalies) -> bool:
    """Raised by log lines alone (no trace anomaly among them)."""
    return all(a.message.startswith(LOG_MESSAGE) for a in anomalies)


def matching_incident(group: Group, open_ones: list[Incident], now: float, policy: Policy) -> Incident | None:
    """The open incident a group belongs to: the one with its root; else a recent one of the same
    service that already names the root among its affected endpoints, or any recent one of the
    service for log lines that cannot say which endpoint; else, for slowness, the service's
    whole-service incident seen last cycle (a starved service shows on one endpoint or another
    from cycle to cycle; it makes things slow, it does not make them fail)."""
    service, endpoint = group.root
    for inc in open_ones:
        if (inc.root_service, inc.root_endpoint) == group.root:
            return inc
    logs_only = endpoint == WHOLE_SERVICE and from_logs(group.anomalies)
    slow_only = _slow_only(group.anomalies)
    for inc in open_ones:
        if now - inc.last_seen > policy.correlation_window or inc.root_service != service:
            continue
        if logs_only or (endpoint in inc.affected and inc.root_endpoint != WHOLE_SERVICE):
            return inc
    for inc in open_ones:  # starvation explains slowness, never failures
        # Seen last cycle: counted in cycles, not seconds, for a starved host runs its cycles late.
        if (inc.root_service, inc.root_endpoint) == (service, WHOLE_SERVICE) and slow_only and \
                inc.clean_cycles == 0:
            return inc
    return None


def _slow_only(anomalies: Iterable) -> bool:
    return all(a.type == AnomalyType.LATENCY for a in anomalies)


def starved_endpoints(group: Group, open_ones: list[Incident]) -> list[Incident]:
    """The endpoint incidents a whole-service group explains: of the same service, about slowness
    on endpoints the group names, and not yet confirmed (no one was told). A starved service shows
    on one endpoint or two before the evidence blames all of it; those incidents were its first
    signs, and fold into it. A confirmed one, or one elsewhere, stays a fault of its own."""
    service, endpoint = group.root
    if endpoint != WHOLE_SERVICE or from_logs(group.anomalies) or not _slow_only(group.anomalies):
        return []
    named = set(group.affected)
    return [inc for inc in open_ones
            if inc.root_service == service and inc.root_endpoint != WHOLE_SERVICE
            and inc.confirmed_at is None and named & set(inc.affected)
            and _slow_only(episode_anomalies(inc))]


def severity(anomalies: Iterable[Anomaly], affected: int, share: float | None = None) -> str:
    """Impact-based severity: failures outrank slowness; spreading raises it a step,
    an endpoint that carries under 5% of the traffic lowers it one."""
    level = 0
    for a in anomalies:
        if a.type == AnomalyType.TIMEOUT:
            level = max(level, 3)
        elif a.type == AnomalyType.ERROR:
            level = max(level, 3 if a.observed >= 0.5 else 2)
        elif a.type == "slo":  # an SLO alert: page (burn >= 6x) is high, ticket (1x) medium
            level = max(level, 2 if (a.baseline or 0) > 1 else 1)
        elif a.type == AnomalyType.TRAFFIC_DROP:
            level = max(level, 2)  # its callers get nothing from it: a failure, not slowness
        elif a.type in (AnomalyType.LATENCY, AnomalyType.DEGRADATION) and a.baseline:
            ratio = a.observed / a.baseline
            level = max(level, 2 if ratio >= 5 else 1)
    if affected >= 3:
        level = min(level + 1, 3)
    if share is not None and share < MINOR_SHARE:
        level = max(level - 1, 0)
    return Severity.at(level)


def traffic_share(group: Group, total_requests: int | None) -> float | None:
    """Share of the requests entering the system that the busiest endpoint the group names served."""
    if not total_requests:
        return None
    return min(1.0, max((a.request_count for a in group.anomalies), default=0) / total_requests)


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
    elif lead.type == "slo" and own:
        title = f"{endpoint} {lead.message.partition(':')[0]} burning its error budget ({lead.observed:.1f}x)"
    elif lead.type == "degradation" and own:
        title = f"{endpoint} degraded to {lead.observed:.0f}ms (long-term {lead.baseline:.0f}ms)"
    elif lead.type == "traffic_drop" and own:
        title = f"{endpoint} traffic dropped to 0 (about {lead.baseline:.0f} expected)"
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


def fault_changed(incident: Incident, group: Group) -> bool:
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
