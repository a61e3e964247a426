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

import re
from datetime import UTC, datetime

from aiops.kinds import IncidentKind

KINDS = (*IncidentKind, "unknown")

# Anomaly type -> report kind when the failure did not spread.
_KIND_OF_TYPE = {"latency": "latency", "error": "errors", "timeout": "timeout"}
# Anomaly types that mean a caller is failing, not just slow: seen off the root, the failure spread.
_FAILING_TYPES = ("error", "timeout")
_TYPE_WORDS = {"latency": "slow", "error": "errors", "timeout": "timeouts"}
# The top exception ``aiops.detect`` appends to an error anomaly's message: "... failed (KeyError: 'sku')".
_EXCEPTION = re.compile(r"failed \((.+)\)\s*$")
MAX_RECOMMENDATIONS = 5


def kind(incident: dict) -> str:
    """``latency``, ``errors``, ``timeout``, ``cascading`` (the failure spread) or ``unknown`` (no anomalies).

    Cascading: an endpoint other than the root reports errors or timeouts, or
    the anomalies span two or more services. Otherwise the root's own first
    anomaly decides (the first anomaly when the root has none of its own), as
    ``aiops.incidents.lead_type`` does.
    """
    anomalies = current_anomalies(incident)
    if not anomalies:
        return "unknown"
    root = _root_key(incident)
    if any(_key(a) != root and a.get("type") in _FAILING_TYPES for a in anomalies):
        return "cascading"
    if len({a.get("service") for a in anomalies}) >= 2:
        return "cascading"
    return _KIND_OF_TYPE.get(_lead(incident).get("type"), "unknown")


def report(incident: dict, now: float | None = None) -> dict:
    """``{"kind", "summary", "recommendations"}`` for one incident.

    ``now`` (epoch seconds) measures how long an open incident has been going;
    without it the report counts up to ``last_seen``, so the same incident
    always gives the same words (notification payloads are stored).
    """
    k = kind(incident)
    sentences = [_what(incident, k), _when(incident, now), _history(incident)]
    return {
        "kind": k,
        "summary": " ".join(s for s in sentences if s),
        "recommendations": _recommend(incident, k)[:MAX_RECOMMENDATIONS],
    }


def with_report(incident: dict) -> dict:
    """The incident JSON with its ``report`` attached: what the API, the pages and the channels show."""
    return {**incident, "report": report(incident)}


# -- reading the incident ---------------------------------------------------------------------------


def _key(anomaly: dict) -> tuple[str, str]:
    return (anomaly.get("service") or "", anomaly.get("endpoint") or "")


def _root(incident: dict) -> dict:
    return incident.get("root_cause") or {}


def _root_key(incident: dict) -> tuple[str, str]:
    root = _root(incident)
    return (root.get("service") or "", root.get("endpoint") or "")


def current_anomalies(incident: dict) -> list[dict]:
    """The anomalies of the current episode (since ``episode_started``: opened, reopened, or another
    kind of fault took over): what the report describes. Earlier episodes are history."""
    anomalies = incident.get("anomalies") or []
    since = _ts(incident.get("episode_started"))
    if since is None:
        return anomalies
    return [a for a in anomalies if (_ts(a.get("detected_at")) or since) >= since]


def _lead(incident: dict) -> dict:
    """The anomaly the incident is about: the root's own first one, else the first one."""
    anomalies = current_anomalies(incident)
    root = _root_key(incident)
    own = [a for a in anomalies if _key(a) == root]
    return (own or anomalies or [{}])[0]


def _where(service: str, endpoint: str) -> str:
    if service and endpoint:
        return f"{endpoint} ({service})"
    return endpoint or service or "an unknown endpoint"


def _root_where(incident: dict) -> str:
    return _where(*_root_key(incident))


def _root_name(incident: dict) -> str:
    service, endpoint = _root_key(incident)
    return endpoint or service or "the root endpoint"


def _service_name(incident: dict) -> str:
    return _root_key(incident)[0] or "the service"


def _callers(incident: dict) -> list[str]:
    """Other endpoints hit by the incident: affected endpoints, then anomalous ones, root excluded."""
    root_endpoint = _root_key(incident)[1]
    names: list[str] = []
    for name in [*(incident.get("affected_endpoints") or []),
                 *(a.get("endpoint") for a in incident.get("anomalies") or [])]:
        if name and name != root_endpoint and name not in names:
            names.append(name)
    return names


def _samples(incident: dict, lead: dict) -> list[dict]:
    """Every anomaly of the lead's endpoint and type this episode, oldest first (one per cycle it was
    seen in)."""
    return [a for a in current_anomalies(incident)
            if _key(a) == _key(lead) and a.get("type") == lead.get("type")]


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None


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


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def _exception(anomaly: dict) -> str | None:
    match = _EXCEPTION.search(anomaly.get("message") or "")
    return match.group(1) if match else None


def _measure(incident: dict, lead: dict) -> str:
    """How bad, against normal: "is slow: 1250 ms on average, 6.9x its usual 180 ms"."""
    samples = _samples(incident, lead) or [lead]
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
        exception = _exception(latest)
        if exception:
            text += f", mostly {exception}"
        return text
    if kind_ == "timeout":
        n = int(observed)
        text = f"is timing out: {n} timed-out call{'s' if n != 1 else ''} in the last detection window"
        if len(samples) > 1:
            text += f", {int(sum(float(a.get('observed') or 0) for a in samples))} in all"
        return text
    return "has a problem: " + (lead.get("message") or _root(incident).get("issue") or "see the incident")


# -- the summary's sentences -----------------------------------------------------------------------


def _what(incident: dict, k: str) -> str:
    """What is wrong, where, and how bad versus normal."""
    root_where = _root_where(incident)
    if k == "unknown":
        issue = _root(incident).get("issue") or incident.get("title") or "an anomaly"
        return f"{root_where}: {issue.rstrip('.')}."
    lead = _lead(incident)
    measure = _measure(incident, lead)
    own = _key(lead) == _root_key(incident)
    if k == "cascading" and own:
        text = f"Cascading failure from {root_where}, which {measure}"
    elif k == "cascading":
        text = f"Cascading failure that traces blame on {root_where}: {_where(*_key(lead))} {measure}"
    elif own:
        text = f"{root_where} {measure}"
    else:
        text = f"{_where(*_key(lead))} {measure}, and its traces point to {root_where} as the cause"
    return text.rstrip(".") + "."


def _when(incident: dict, now: float | None) -> str:
    """Since when, for how long, whether still going, and which callers it hits."""
    first, last = incident.get("first_detected"), incident.get("last_seen")
    resolved = incident.get("resolved_at")
    start = _ts(first)
    parts = []
    if first:
        if incident.get("status") == "resolved" or resolved:
            end = _ts(resolved) if resolved else _ts(last)
            text = f"It started at {first}"
            if resolved:
                text += f" and was resolved at {resolved}"
            else:
                text += " and is resolved"
            if start is not None and end is not None:
                text += f" after {_duration(end - start)}"
            parts.append(text)
        else:
            end = now if now is not None else _ts(last)
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
    callers = _callers(incident)
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
    return _cap("; ".join(parts)) + "."


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
    return _cap("; ".join(parts)) + "."


# -- recommendations -------------------------------------------------------------------------------


def _who(incident: dict) -> str:
    callers = _callers(incident)
    return f"the callers ({', '.join(callers)})" if callers else "its callers"


def _trace_hint(incident: dict) -> str:
    trace_id = (incident.get("trace_correlation") or {}).get("trace_id")
    return f"example trace {trace_id}" if trace_id else "a slow or failing trace"


def _since(incident: dict) -> str:
    first = incident.get("first_detected")
    return f"shortly before {first}" if first else "the last few hours"


def _latency(incident: dict) -> list[str]:
    root, service = _root_name(incident), _service_name(incident)
    return [
        f"Check what changed on {root} {_since(incident)}: deploys, config, feature flags, traffic mix.",
        f"Open the {_trace_hint(incident)} on the incident page and read its waterfall: is {root}'s "
        "time spent in its own work, a database query, or a downstream call?",
        f"Check the latency of {root}'s dependencies (database, cache, downstream services) over the "
        "same period; a slow dependency makes every caller slow.",
        f"Look for saturation on {service}: CPU, worker threads, connection pools (database, HTTP) "
        "and request queues.",
        f"Check {service} for garbage-collection pauses and memory pressure.",
    ]


def _errors(incident: dict) -> list[str]:
    root, service = _root_name(incident), _service_name(incident)
    exceptions = []
    lead = _lead(incident)
    for a in current_anomalies(incident):
        exc = _exception(a) if _key(a) == _key(lead) else None
        if exc and exc not in exceptions:
            exceptions.append(exc)
    if exceptions:
        first = (f"Start from the errors recorded on {_where(*_key(lead))}: {'; '.join(exceptions[:3])}. "
                 f"The {_trace_hint(incident)} shows where they are raised.")
    else:
        first = (f"Read the exception types and messages on {root}'s failing spans, starting with "
                 f"the {_trace_hint(incident)}.")
    return [
        first,
        f"Check recent deploys and config changes to {service} ({_since(incident)}); if one lines up, "
        "roll it back first and investigate after.",
        f"Check {root}'s dependencies for errors: database, downstream services, credentials, "
        "quotas and rate limits.",
        f"Tell apart errors {root} raises itself from errors it passes on from a dependency "
        "(the failing child span in the trace waterfall).",
    ]


def _timeout(incident: dict) -> list[str]:
    root = _root_name(incident)
    who = _who(incident)
    return [
        f"Check the health of {root}: is it up, hung, or out of workers? Timeouts mean it did not "
        "answer in time, not that it answered with an error.",
        f"Compare the timeouts {who} use for {root} with its normal latency; a budget tighter than "
        "a slow-but-healthy response turns slowness into failures.",
        f"Check whether retries are amplifying the load: every timed-out call to {root} that is "
        "retried adds traffic to an endpoint that is already struggling.",
        f"Check the connection pools between {who} and {root}: an exhausted pool queues requests "
        "until they time out.",
        f"Open the {_trace_hint(incident)} to see which call to {root} timed out and after how long.",
    ]


def _cascading(incident: dict) -> list[str]:
    root = _root_name(incident)
    who = _who(incident)
    lead_type = _lead(incident).get("type")
    own = {"latency": _latency, "error": _errors, "timeout": _timeout}.get(lead_type)
    recs = [f"Fix the root first: {_root_where(incident)}. {_cap(who)} should recover once it does."]
    if own:
        recs.append(own(incident)[0])
    recs += [
        f"Check how {who} call {root}: timeouts, circuit breakers and fallbacks, so they fail fast "
        "instead of piling up waiting for it.",
        f"Turn down retries to {root} (backoff with jitter, retry budgets): retry storms keep a "
        "struggling dependency down.",
        f"If {root} stays down, shed load: rate-limit or switch off the features that depend on it.",
    ]
    return recs


def _unknown(incident: dict) -> list[str]:
    root, service = _root_name(incident), _service_name(incident)
    return [
        f"Open the incident page and the {_trace_hint(incident)} to see what {root} is doing.",
        f"Check recent deploys and config changes to {service} ({_since(incident)}).",
        f"Check {service}'s dependencies and saturation: CPU, memory, worker threads, connection pools.",
    ]


_RECOMMENDERS = {
    "latency": _latency,
    "errors": _errors,
    "timeout": _timeout,
    "cascading": _cascading,
    "unknown": _unknown,
}


def _recommend(incident: dict, k: str) -> list[str]:
    return _RECOMMENDERS[k](incident)
