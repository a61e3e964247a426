"""What an incident report reads from the incident JSON (``Incident.to_dict()``), and how it names
what it reads. Pure logic: :mod:`aiops.incidents.reports` and
:mod:`aiops.incidents.recommendations` share it.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

from aiops.detection import patterns

# The top exception ``aiops.detection.rules`` appends to an error message: "... failed (KeyError: 'sku')".
_EXCEPTION = re.compile(r"failed \((.+)\)\s*$")


def key(anomaly: dict) -> tuple[str, str]:
    """An anomaly's ``(service, endpoint)``."""
    return (anomaly.get("service") or "", anomaly.get("endpoint") or "")


def root_cause(incident: dict) -> dict:
    return incident.get("root_cause") or {}


def root_key(incident: dict) -> tuple[str, str]:
    root = root_cause(incident)
    return (root.get("service") or "", root.get("endpoint") or "")


def current_anomalies(incident: dict) -> list[dict]:
    """The anomalies of the current episode (since ``episode_started``: opened, reopened, or another
    kind of fault took over): what the report describes. Earlier episodes are history."""
    anomalies = incident.get("anomalies") or []
    since = timestamp(incident.get("episode_started"))
    if since is None:
        return anomalies
    return [a for a in anomalies if (timestamp(a.get("detected_at")) or since) >= since]


def lead(incident: dict) -> dict:
    """The anomaly the incident is about: the root's own first one, else the first one."""
    anomalies = current_anomalies(incident)
    root = root_key(incident)
    own = [a for a in anomalies if key(a) == root]
    return (own or anomalies or [{}])[0]


def where(service: str, endpoint: str) -> str:
    """An endpoint as a report names it: "GET /pay (payment)"."""
    if service and endpoint:
        return f"{endpoint} ({service})"
    return endpoint or service or "an unknown endpoint"


def root_where(incident: dict) -> str:
    return where(*root_key(incident))


def root_name(incident: dict) -> str:
    service, endpoint = root_key(incident)
    return endpoint or service or "the root endpoint"


def service_name(incident: dict) -> str:
    return root_key(incident)[0] or "the service"


def callers(incident: dict) -> list[str]:
    """Other endpoints hit by the incident: affected endpoints, then anomalous ones, root excluded."""
    root_endpoint = root_key(incident)[1]
    names: list[str] = []
    for name in [*(incident.get("affected_endpoints") or []),
                 *(a.get("endpoint") for a in incident.get("anomalies") or [])]:
        if name and name != root_endpoint and name not in names:
            names.append(name)
    return names


def samples(incident: dict, lead: dict) -> list[dict]:
    """Every anomaly of the lead's endpoint and type this episode, oldest first (one per cycle it was
    seen in)."""
    return [a for a in current_anomalies(incident)
            if key(a) == key(lead) and a.get("type") == lead.get("type")]


def timestamp(value: str | None) -> float | None:
    """An ISO 8601 UTC time of the incident JSON as epoch seconds (None if absent or unreadable)."""
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None


def exception(anomaly: dict) -> str | None:
    """The top exception an error anomaly's message names, if any."""
    match = _EXCEPTION.search(anomaly.get("message") or "")
    return match.group(1) if match else None


def cap(text: str) -> str:
    """``text`` with a capital first letter (a sentence that starts with a name)."""
    return text[:1].upper() + text[1:]


_FAILING = ("error", "timeout")


def pattern_of(anomaly: dict) -> str | None:
    """What an anomaly says fails: the pattern detection stored, else the one its message names (a
    log line's template, the top exception; anomalies stored before patterns existed)."""
    if anomaly.get("type") not in _FAILING:
        return None
    stored = anomaly.get("pattern")
    if stored in patterns.PATTERNS:
        return stored
    return patterns.of_text(anomaly.get("message"))


def _own_or_lead(incident: dict) -> list[dict]:
    """The root's own anomalies this episode, else all of them: a root blamed by its callers'
    traces (a peer nothing records, seen only through their CLIENT spans) shows in theirs."""
    current = current_anomalies(incident)
    root = root_key(incident)
    return [a for a in current if key(a) == root] or current


def pattern(incident: dict) -> str | None:
    """The failure pattern the root's own failures show (the most frequent), or None."""
    counts = Counter(p for a in _own_or_lead(incident) if (p := pattern_of(a)))
    if not counts:
        return None
    return max(counts.items(), key=lambda kv: (kv[1], -patterns.PATTERNS.index(kv[0])))[0]


def timeout_cycles(incident: dict) -> int:
    """In how many detection cycles the root (or, blamed by traces, its callers) timed out, over the
    incident's whole history: timeouts that recur on the same edge, across cycles and recurrences."""
    keys = {key(a) for a in _own_or_lead(incident) if a.get("type") == "timeout"}
    if not keys:
        return 0
    return len({a.get("detected_at") for a in incident.get("anomalies") or []
                if a.get("type") == "timeout" and key(a) in keys})


def evidence(incident: dict, kind: str) -> str | None:
    """The exception (or log line) of the root's failures that shows ``kind``, bounded."""
    for a in _own_or_lead(incident):
        if pattern_of(a) == kind:
            return exception(a) or (a.get("message") or "")[:300] or None
    return None
