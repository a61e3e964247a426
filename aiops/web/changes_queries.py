"""What changed, as ``GET /aiops/changes`` and the endpoint and incident pages share it: the bounded
sample of one endpoint's spans in a range (:mod:`telemetry.span_attrs`), split into bad and good
and ranked by :mod:`aiops.detection.changes`.

On an incident the range runs from :data:`INCIDENT_LEAD` before its detection (so the comparison
holds normal spans of the same endpoint) to its resolution, or now while it is active; the endpoint
is its root (a whole-service root compares the whole service).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from aiops.detection import changes
from aiops.web.incident_queries import MAX_SERVICE_CHARS, InvalidInput, attr_filter, text_filter
from aiops.web.series_queries import DEFAULT_SINCE, MAX_ENDPOINT_CHARS, iso_ms
from telemetry import span_attrs, times
from telemetry.attributes import decode

INCIDENT_LEAD = 15 * 60


@dataclass(frozen=True)
class Query:
    service: str
    endpoint: str | None  # None: every endpoint of the service
    since: float
    until: float
    attr: tuple[str, str] | None = None  # only spans whose attribute ``key`` is ``value``


def parse(
    args: Mapping[str, str], service: str | None = None, endpoint: str | None = None, now: float | None = None
) -> Query:
    """``service`` (required), ``endpoint`` (optional), ``since`` (default 1h back), ``until``
    (default now), ``attr`` (optional ``key:value``); InvalidInput naming what is wrong."""
    now = time.time() if now is None else now
    if service is None:
        service = text_filter(args, "service", MAX_SERVICE_CHARS)
        endpoint = text_filter(args, "endpoint", MAX_ENDPOINT_CHARS) or None
    if not service:
        raise InvalidInput("'service' is required: the service name, as on the dashboard")
    try:
        since, until = times.time_range(args.get("since"), args.get("until"), now, DEFAULT_SINCE)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return Query(service, endpoint, since, until, attr_filter(args))


def for_incident(incident, now: float) -> Query:
    """The comparison an incident page shows (the module's docstring)."""
    until = incident.resolved_at if incident.resolved_at is not None else max(now, incident.last_seen or now)
    return Query(
        incident.root_service, incident.root_endpoint or None, incident.first_detected - INCIDENT_LEAD, until
    )


def read(q: Query) -> dict:
    """``GET /aiops/changes``' answer (docs/http-api.md has an example)."""
    spans = span_attrs.endpoint_spans(q.service, q.endpoint, q.since, q.until, q.attr)
    context = span_attrs.context(spans)
    slow = changes.slow_above([s.duration_ms for s in spans])

    def observations():
        for s in spans:
            bad = bool(s.error) or (slow is not None and s.duration_ms > slow)
            factors = changes.span_factors(
                s,
                q.service,
                context.callers.get(s.span_id),
                context.peers.get(s.span_id, ()),
                decode(s.attributes),
            )
            yield bad, factors

    found = changes.compare(observations())
    return {
        "service": q.service,
        "endpoint": q.endpoint,
        "since": iso_ms(q.since),
        "until": iso_ms(q.until),
        "attr": f"{q.attr[0]}:{q.attr[1]}" if q.attr else None,
        "spans": len(spans),
        "sampled": len(spans) >= span_attrs.MAX_SPANS,
        "slow_above_ms": None if slow is None else round(slow, 3),
        "bad": found.bad,
        "good": found.good,
        "factors": [f.to_dict() for f in found.factors],
        "where": [f.to_dict() for f in found.where],
    }
