"""What an on-call engineer should look at first, per report kind: the recommendations of an
incident report (:mod:`aiops.incidents.reports`). Pure logic over the incident JSON.
"""

from __future__ import annotations

from aiops.detection import patterns
from aiops.incidents import facts


def _who(incident: dict) -> str:
    callers = facts.callers(incident)
    return f"the callers ({', '.join(callers)})" if callers else "its callers"


def _trace_hint(incident: dict) -> str:
    trace_id = (incident.get("trace_correlation") or {}).get("trace_id")
    return f"example trace {trace_id}" if trace_id else "a slow or failing trace"


def _since(incident: dict) -> str:
    first = incident.get("first_detected")
    return f"shortly before {first}" if first else "the last few hours"


def _latency(incident: dict) -> list[str]:
    root, service = facts.root_name(incident), facts.service_name(incident)
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
    root, service = facts.root_name(incident), facts.service_name(incident)
    exceptions = []
    lead = facts.lead(incident)
    for a in facts.current_anomalies(incident):
        exc = facts.exception(a) if facts.key(a) == facts.key(lead) else None
        if exc and exc not in exceptions:
            exceptions.append(exc)
    if exceptions:
        first = (f"Start from the errors recorded on {facts.where(*facts.key(lead))}: "
                 f"{'; '.join(exceptions[:3])}. The {_trace_hint(incident)} shows where they are raised.")
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
    root = facts.root_name(incident)
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
    root = facts.root_name(incident)
    who = _who(incident)
    lead_type = facts.lead(incident).get("type")
    own = {"latency": _latency, "error": _errors, "timeout": _timeout}.get(lead_type)
    recs = [f"Fix the root first: {facts.root_where(incident)}. "
            f"{facts.cap(who)} should recover once it does."]
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


def _degradation(incident: dict) -> list[str]:
    root, service = facts.root_name(incident), facts.service_name(incident)
    return [
        f"Compare {root}'s latency over the last hours and days: a slow creep points at growth, "
        "not at one change. Look for growing data (tables, caches, queues), traffic mix and leaks.",
        f"Check {service} for resources that fill up over time: memory and garbage-collection time, "
        "connection pools, thread pools, disk and file descriptors.",
        f"List the deploys and config changes to {service} since it was last at its usual latency; "
        "a gradual rollout degrades gradually too.",
        f"Open the {_trace_hint(incident)} and compare its waterfall with an older one: which step "
        f"of {root} grew?",
        f"Check {root}'s dependencies (database query plans, index bloat, downstream services) over "
        "the same period.",
    ]


def _traffic_drop(incident: dict) -> list[str]:
    root, service = facts.root_name(incident), facts.service_name(incident)
    who = _who(incident)
    return [
        f"Check that {service} is up and listening: process, container restarts, health checks, "
        "and the port its callers connect to (connection refused means nothing listens there).",
        f"Check the routing to {root}: load balancer targets, service discovery and DNS, ingress "
        "rules, feature flags that send traffic elsewhere.",
        f"Check {who}: did they stop calling {root}, or do their calls fail before they arrive?",
        f"If {service} is running and serving, check its telemetry pipeline: the SDK exporter, "
        "the collector, and their dropped-span counters (missing data looks like no traffic).",
        f"Check recent deploys and config changes to {service} ({_since(incident)}).",
    ]


def _evidence(incident: dict, kind: str, lead_in: str) -> list[str]:
    found = facts.evidence(incident, kind)
    if not found:
        return []
    return [f"{lead_in}: {found}. Open the {_trace_hint(incident)} to see where it is raised."]


def _dependency(incident: dict) -> list[str]:
    root = facts.root_name(incident)
    return [
        *_evidence(incident, "dependency", f"Start from the failed calls {root} makes"),
        f"Find the dependency {root} calls in the trace waterfall (the failing CLIENT span: its peer "
        "or server address) and check whether it is up and reachable from {root}'s hosts.".replace(
            "{root}", root),
        "Connection refused: is the dependency running, listening on that port, and is the address "
        "in the config right? DNS errors: does its name resolve from these hosts (resolver, records, "
        "search domains)? 5xx: check the dependency's own status page or logs.",
        f"Check what changed in {root}'s configuration for it ({_since(incident)}): endpoints, "
        "credentials, certificates, firewall rules.",
        f"Make {root} degrade gracefully while it is down: a timeout, a circuit breaker and a fallback, "
        "so one failing dependency does not fail every request.",
    ]


def _exhaustion(incident: dict) -> list[str]:
    root, service = facts.root_name(incident), facts.service_name(incident)
    found = facts.evidence(incident, "exhaustion")
    what = patterns.resource(found) or "memory, connection pools, file descriptors and disk"
    advice = {
        "connection pool": f"Check {service}'s connection pool: its size against the number of workers "
                           "and threads, connections held too long (slow queries, transactions left "
                           "open, leaks), and the database's own connection limit.",
        "file descriptors": f"Check {service}'s open file descriptors against its limit (ulimit -n, "
                            "/proc/<pid>/limits): sockets or files opened and never closed leak them.",
        "disk": f"Free disk space where {service} writes (logs, temp files, data volume) and find what "
                "filled it; check inode use too (df -i).",
        "memory": f"Check {service}'s memory use against its limit (container, cgroup, heap): a leak "
                  "grows steadily, a spike follows one large request or payload.",
    }.get(what)
    return [
        *_evidence(incident, "exhaustion", f"{root} ran out of {what}"),
        advice or f"Check {service}'s {what} against their limits.",
        f"Relieve it now: restart or scale out {service}, or raise the limit, then find what consumed it.",
        f"Check what changed ({_since(incident)}): traffic, a deploy, a config change that sized pools "
        "or limits.",
        f"Alert on {service}'s usage of {what} before it runs out, not on the errors after.",
    ]


def _invalid_response(incident: dict) -> list[str]:
    root = facts.root_name(incident)
    return [
        *_evidence(incident, "invalid_response", f"{root} could not parse what it received"),
        f"Find the call whose answer {root} could not parse in the {_trace_hint(incident)} (the CLIENT "
        "span just before the failure) and look at what that service answers: an HTML error page, an "
        "empty body, or a changed schema behind a 200.",
        f"Check deploys of the services {root} calls ({_since(incident)}): a changed response format "
        "or contract breaks every caller at once.",
        f"Make {root} check the status and content type before parsing, and report a bad answer as "
        "the dependency's failure (a 502) with the body's first bytes in the log.",
    ]


def _timeouts(incident: dict) -> list[str]:
    recs = _timeout(incident)
    root = facts.root_name(incident)
    return [
        f"These timeouts recur on the same calls to {root} across detection cycles: a standing "
        "problem, not a blip. Find what keeps {root} from answering in time (hung workers, a "
        "dependency of its own, a lock, saturation).".replace("{root}", root),
        *recs[:4],
    ]


def _unknown(incident: dict) -> list[str]:
    root, service = facts.root_name(incident), facts.service_name(incident)
    return [
        f"Open the incident page and the {_trace_hint(incident)} to see what {root} is doing.",
        f"Check recent deploys and config changes to {service} ({_since(incident)}).",
        f"Check {service}'s dependencies and saturation: CPU, memory, worker threads, connection pools.",
    ]


def _slo(incident: dict) -> list[str]:
    root, service = facts.root_name(incident), facts.service_name(incident)
    return [
        f"The error budget of an SLO on {root} is burning fast: open /slos for its burn rates and "
        "daily history, and the incident page for the failing or slow requests behind it.",
        f"Check recent deploys and config changes to {service} ({_since(incident)}): a slow burn "
        "often starts with a change the baselines have since learned to accept.",
        f"Check {service}'s dependencies and saturation: CPU, memory, worker threads, connection pools.",
    ]


_RECOMMENDERS = {
    "slo": _slo,
    "latency": _latency,
    "errors": _errors,
    "timeout": _timeout,
    "cascading": _cascading,
    "degradation": _degradation,
    "traffic_drop": _traffic_drop,
    "dependency": _dependency,
    "exhaustion": _exhaustion,
    "invalid_response": _invalid_response,
    "timeouts": _timeouts,
    "unknown": _unknown,
}


def recommend(incident: dict, kind: str) -> list[str]:
    """What to look at first, most useful first, for an incident of report kind ``kind``."""
    return _RECOMMENDERS[kind](incident)
