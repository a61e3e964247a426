"""Plain-language incident reports: what is wrong, where, how bad, and what to look at first.

Pure logic over the incident JSON (``Incident.to_dict()``): a dict in, a dict
of plain strings out; :func:`with_report` is the incident as the API and the
channels send it (the model only knows its own fields). The same report goes
on the incident page and into every notification, so an on-call engineer
reads the same words wherever they land.
Everything here comes from telemetry: callers escape it for their medium (the
templates HTML-escape it, :mod:`aiops.outbox.slack` escapes it for Slack).
"""

from __future__ import annotations

from aiops.detection import patterns
from aiops.incidents import facts
from aiops.incidents.facts import current_anomalies  # also aiops.web.pages' reports.current_anomalies
from aiops.incidents.recommendations import recommend
from aiops.kinds import IncidentKind

KINDS = (*IncidentKind, "unknown")

# Anomaly type -> report kind when the failure did not spread.
_KIND_OF_TYPE = {"latency": "latency", "error": "errors", "timeout": "timeout", "slo": "slo",
                 "degradation": "degradation", "traffic_drop": "traffic_drop"}
# Patterns told apart by time: when the root's own lead anomaly is one, it names the incident even
# though its callers fail (a stopped endpoint's callers get refused: that is the drop, not a cascade).
_TIME_PATTERNS = ("degradation", "traffic_drop")
# Anomaly types that mean a caller is failing, not just slow: seen off the root, the failure spread.
_FAILING_TYPES = ("error", "timeout")
_TYPE_WORDS = {"latency": "slow", "error": "errors", "timeout": "timeouts", "degradation": "degraded",
               "traffic_drop": "silent"}
MAX_RECOMMENDATIONS = 5
REPEATED_TIMEOUT_CYCLES = 2  # timeouts on the same edge in this many cycles are ``timeouts``, not one-off


def kind(incident: dict) -> str:
    """The incident's failure pattern: ``dependency``, ``exhaustion``, ``invalid_response``,
    ``timeouts``, ``degradation``, ``traffic_drop``, ``slo``, ``cascading``, ``latency``, ``errors``,
    ``timeout``, or ``unknown`` (no anomalies).

    First what fails, when the root's own failures name it (:mod:`aiops.detection.patterns`:
    a failed call to a peer, an exhausted resource, an answer that could not be parsed): that is
    the fault to fix, however far it spread. Then timeouts that recur on the same edge across
    cycles (``timeouts``; a one-off stays ``timeout``). Then a pattern told apart by time, when it
    is the root's own lead anomaly (``degradation``, ``traffic_drop``: a stopped endpoint's callers
    get refused, which is the drop, not a cascade). Then cascading: an endpoint other than
    the root reports errors or timeouts, or the anomalies span two or more services. Otherwise
    the root's own first anomaly decides (the first anomaly when the root has none of its own),
    as ``aiops.incidents.rules.lead_type`` does.
    """
    anomalies = current_anomalies(incident)
    if not anomalies:
        return "unknown"
    named = facts.pattern(incident)
    if named:
        return named
    if facts.timeout_cycles(incident) >= REPEATED_TIMEOUT_CYCLES:
        return IncidentKind.TIMEOUTS.value
    root = facts.root_key(incident)
    lead = facts.lead(incident)
    if facts.key(lead) == root and lead.get("type") in _TIME_PATTERNS:
        return _KIND_OF_TYPE[lead["type"]]
    if any(facts.key(a) != root and a.get("type") in _FAILING_TYPES for a in anomalies):
        return "cascading"
    if len({a.get("service") for a in anomalies}) >= 2:
        return "cascading"
    return _KIND_OF_TYPE.get(facts.lead(incident).get("type"), "unknown")


def report(incident: dict, now: float | None = None) -> dict:
    """``{"kind", "summary", "recommendations"}`` for one incident.

    ``now`` (epoch seconds) measures how long an open incident has been going;
    without it the report counts up to ``last_seen``, so the same incident
    always gives the same words (notification payloads are stored).
    """
    k = kind(incident)
    sentences = [_what(incident, k), _pattern(incident, k), _when(incident, now), _history(incident)]
    return {
        "kind": k,
        "summary": " ".join(s for s in sentences if s),
        "recommendations": recommend(incident, k)[:MAX_RECOMMENDATIONS],
    }


def with_report(incident: dict) -> dict:
    """The incident JSON with its ``report`` attached, and its ``kind`` beside it: what the API, the
    pages and the channels show."""
    rep = report(incident)
    return {**incident, "kind": rep["kind"], "report": rep}


# -- formatting ---------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value < 10:
        return f"{value:.1f} ms"
    return f"{value:.0f} ms"


def _pct(rate: float) -> str:
    percent = rate * 100
    if 0 < percent < 1:
        return f"{percent:.1f}%"
    return f"{percent:.0f}%"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return "under a minute"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def _measure(incident: dict, lead: dict) -> str:
    """How bad, against normal: "is slow: 1250 ms on average, 6.9x its usual 180 ms"."""
    samples = facts.samples(incident, lead) or [lead]
    latest = samples[-1]
    observed = float(latest.get("observed") or 0.0)
    baseline = latest.get("baseline")
    peak = max(float(a.get("observed") or 0.0) for a in samples)
    kind_ = lead.get("type")
    if kind_ == "latency":
        text = f"is slow: {_ms(observed)} on average"
        if baseline:
            text += f", {observed / baseline:.1f}x its usual {_ms(baseline)}"
        if len(samples) > 1 and peak > observed * 1.25:
            text += f" (peak {_ms(peak)})"
        return text
    if kind_ == "error":
        count = latest.get("request_count")
        text = f"is failing {_pct(observed)} of " + (f"its {count} requests" if count else "its requests")
        if baseline is not None:
            text += f" (normally {_pct(baseline)})"
        if len(samples) > 1 and peak > observed * 1.25:
            text += f", peak {_pct(peak)}"
        exception = facts.exception(latest)
        if exception:
            text += f", mostly {exception}"
        return text
    if kind_ in _TIME_PATTERNS:
        return _time_measure(kind_, observed, baseline)
    if kind_ == "timeout":
        n = int(observed)
        text = f"is timing out: {n} timed-out call{'s' if n != 1 else ''} in the last detection window"
        if len(samples) > 1:
            text += f", {int(sum(float(a.get('observed') or 0) for a in samples))} in all"
        return text
    issue = lead.get("message") or facts.root_cause(incident).get("issue") or "see the incident"
    return "has a problem: " + issue


def _time_measure(kind_: str, observed: float, baseline: float | None) -> str:
    """How bad a pattern told apart by time is: against the long-term latency, or the expected traffic."""
    if kind_ == "degradation":
        text = f"has degraded: {_ms(observed)} on average"
        if baseline:
            text += (f", {observed / baseline:.1f}x its long-term {_ms(baseline)} "
                     "(a slow creep the recent baseline absorbed)")
        return text
    text = "stopped getting requests"
    if baseline:
        text += (f": none in the last detection window, where the rest of the traffic "
                 f"predicted about {baseline:.0f}")
    return text


# -- the summary's sentences -----------------------------------------------------------------------


def _what(incident: dict, k: str) -> str:
    """What is wrong, where, and how bad versus normal."""
    root_where = facts.root_where(incident)
    if k == "unknown":
        issue = facts.root_cause(incident).get("issue") or incident.get("title") or "an anomaly"
        return f"{root_where}: {issue.rstrip('.')}."
    lead = facts.lead(incident)
    measure = _measure(incident, lead)
    own = facts.key(lead) == facts.root_key(incident)
    if k == "cascading" and own:
        text = f"Cascading failure from {root_where}, which {measure}"
    elif k == "cascading":
        lead_where = facts.where(*facts.key(lead))
        text = f"Cascading failure that traces blame on {root_where}: {lead_where} {measure}"
    elif own:
        text = f"{root_where} {measure}"
    else:
        text = f"{facts.where(*facts.key(lead))} {measure}, and its traces point to {root_where} as the cause"
    return text.rstrip(".") + "."


def _pattern(incident: dict, k: str) -> str:
    """What the pattern is, in words, with the evidence that named it."""
    evidence = facts.evidence(incident, k)
    shown = f" ({evidence})" if evidence else ""
    if k == IncidentKind.DEPENDENCY:
        return f"Dependency failure: its calls to a dependency fail before any useful answer{shown}."
    if k == IncidentKind.EXHAUSTION:
        what = patterns.resource(evidence) or "a resource"
        return f"Resource exhaustion: it has run out of {what}{shown}."
    if k == IncidentKind.INVALID_RESPONSE:
        return f"Invalid response: it received an answer it could not parse{shown}."
    if k == IncidentKind.TIMEOUTS:
        n = facts.timeout_cycles(incident)
        return f"Repeated timeouts: the same calls timed out in {n} detection cycles."
    return ""


def _when(incident: dict, now: float | None) -> str:
    """Since when, for how long, whether still going, and which callers it hits."""
    first, last = incident.get("first_detected"), incident.get("last_seen")
    resolved = incident.get("resolved_at")
    start = facts.timestamp(first)
    parts = []
    if first:
        if incident.get("status") == "resolved" or resolved:
            end = facts.timestamp(resolved) if resolved else facts.timestamp(last)
            text = f"It started at {first}"
            if resolved:
                text += f" and was resolved at {resolved}"
            else:
                text += " and is resolved"
            if start is not None and end is not None:
                text += f" after {_duration(end - start)}"
            parts.append(text)
        else:
            end = now if now is not None else facts.timestamp(last)
            text = f"It started at {first} and is still ongoing"
            if start is not None and end is not None:
                text += f" after {_duration(end - start)}"
            notes = []
            if incident.get("status") == "acknowledged":
                notes.append("acknowledged")
            if last:
                notes.append(f"last seen {last}")
            if notes:
                text += f" ({'; '.join(notes)})"
            parts.append(text)
    callers = facts.callers(incident)
    if callers:
        by_endpoint: dict[str, list[str]] = {}
        for a in incident.get("anomalies") or []:
            words = by_endpoint.setdefault(a.get("endpoint") or "", [])
            word = _TYPE_WORDS.get(a.get("type"), a.get("type") or "")
            if word and word not in words:
                words.append(word)
        shown = [f"{c} ({', '.join(by_endpoint[c])})" if by_endpoint.get(c) else c for c in callers]
        parts.append(f"also affected: {', '.join(shown)}")
    if not parts:
        return ""
    return facts.cap("; ".join(parts)) + "."


def _history(incident: dict) -> str:
    """How many cycles it was seen in, and whether it keeps coming back."""
    parts = []
    cycles = int(incident.get("seen_cycles") or 0)
    if cycles:
        parts.append(f"Seen in {cycles} detection cycle{'s' if cycles != 1 else ''}")
    reopened = int(incident.get("reopen_count") or 0)
    if reopened:
        parts.append(f"it has recurred {_times(reopened)} after being resolved")
    if incident.get("related_to"):
        parts.append(f"it follows the earlier incident {incident['related_to']}")
    if not parts:
        return ""
    return facts.cap("; ".join(parts)) + "."
