"""The service map on the Flask edge: ``GET /aiops/map?since=&until=`` (JSON) and the ``/map`` page.

The map is built from a bounded read of the range's spans (:mod:`telemetry.span_sample`) by
:mod:`aiops.detection.service_map`, then coloured from the active incidents.

``?incident=<id>`` draws an incident's propagation path: the range defaults to the incident's
(as its charts', :func:`aiops.web.series_queries.incident_window`) and the answer gets ``path``
(:func:`aiops.detection.service_map.path`), which the incident page's small map highlights.

**Live, by conditional polling** (:mod:`aiops.web.live`, which says why not server-sent events).
``GET /aiops/map`` answers a 304 to ``If-None-Match`` while no cycle finished and no incident
changed; the ``/map`` page polls for itself the same way and, on a change, takes the map's data
and tables from its new rendering. Without JavaScript the page is the same data as tables, and
a ``<noscript>`` refresh.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, render_template, request
from sqlalchemy import select

from aiops.detection import service_map
from aiops.heap import no_cycle_collection
from aiops.settings import current_settings
from aiops.store.models import Incident, iso
from aiops.web import errors, live
from aiops.web import incident_queries as incident_service
from aiops.web.incident_queries import InvalidInput
from aiops.web.pages import REFRESH_SECONDS
from aiops.web.series_queries import PAD_MIN, incident_window
from telemetry import span_sample, times
from telemetry.db import db

api = Blueprint("map", __name__, url_prefix="/aiops")
pages = errors.html_pages(Blueprint("map_pages", __name__))

DEFAULT_SINCE = "15m"
MAX_INCIDENTS = 500  # active incidents read to colour the map (the newest)


def time_range(args, now: float, incident: Incident | None = None) -> tuple[float, float]:
    """``since`` (default 15 minutes back, or the incident's range) and ``until`` (default now): a
    duration back from now, epoch seconds or ISO 8601; anything else, or a range that ends before it
    starts, is InvalidInput."""
    since, until = args.get("since"), args.get("until")
    if incident is not None and not since and not until:
        start, end = incident_window(incident.first_detected, incident.resolved_at, incident.last_seen, now)
        return start, max(end, start + PAD_MIN)  # a replayed incident's clock may run ahead of this one
    try:
        return times.time_range(since, until, now, DEFAULT_SINCE)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def incident_of(args) -> Incident | None:
    """The incident ``?incident=`` names (IncidentNotFound, a 404, when there is none), or None."""
    ident = args.get("incident")
    return None if ident is None else incident_service.get(ident)


def version(args) -> str:
    """The ETag of the map for these arguments: it changes when a cycle finishes or an incident does."""
    return live.etag(args.get("since") or DEFAULT_SINCE, args.get("until") or "", args.get("incident"))


def _marks() -> list[service_map.IncidentMark]:
    rows = db.session.execute(
        select(Incident.id, Incident.root_service, Incident.root_endpoint, Incident.affected,
               Incident.propagation)
        .where(Incident.status != "resolved").order_by(Incident.last_seen.desc()).limit(MAX_INCIDENTS))
    marks = []
    for ident, service, endpoint, affected, path in rows:
        touched = {(service, name) for name in affected or () if isinstance(name, str)}
        touched |= {(hop.get("service"), hop.get("endpoint")) for hop in path or () if isinstance(hop, dict)}
        marks.append(service_map.IncidentMark(ident, service, endpoint or "", frozenset(touched)))
    return marks


def build(since: float, until: float, incident: Incident | None = None) -> dict:
    """The map of ``[since, until]`` with its statuses, as ``GET /aiops/map`` answers it (with the
    ``path`` of ``incident`` when one is given)."""
    settings = current_settings()
    with no_cycle_collection():
        sample = span_sample.spans_between(since, until, settings.ignore_services)
        graph = service_map.build(sample.spans, until - since, sample.weights, settings.ignore_services)
    service_map.mark(graph, _marks(), settings.error_rate_threshold)
    out = {"since": iso(since), "until": iso(until), "spans_read": len(sample.spans),
           "sampled": sample.sampled, **graph}
    if incident is not None:
        root = (incident.root_service, incident.root_endpoint or "")
        affected = [(incident.root_service, e) for e in incident.affected or () if isinstance(e, str)]
        out["path"] = service_map.path(graph, incident.id, root, incident.propagation, affected)
    return out


def endpoint_url(service: str, endpoint: str) -> str:
    """The endpoint page's address (``/services/<service>/endpoints/<endpoint>``, each part quoted)."""
    return f"/services/{quote(service, safe='')}/endpoints/{quote(endpoint, safe='')}"


@api.get("/map")
def map_json():
    """Nodes and caller -> callee edges of ``?since=`` .. ``?until=`` (and ``?incident=``'s path);
    304 while the ETag stands."""
    now = time.time()
    incident = incident_of(request.args)  # a bad range or an unknown incident is a 4xx even with an ETag
    since, until = time_range(request.args, now, incident)
    tag = version(request.args)
    if request.if_none_match.contains(tag):
        response = Response(status=304)
    else:
        response = jsonify(build(since, until, incident))
    response.set_etag(tag)
    response.headers["Cache-Control"] = "no-cache"
    return response


@pages.get("/map")
def map_page():
    """Live (:func:`aiops.web.live.page`): a 304 to ``live.js``' poll until the next cycle."""
    since, until = time_range(request.args, time.time())
    args = {k: request.args.get(k, "") for k in ("since", "until")}
    return live.page(lambda live_args: render_template(
        "map.html", data=build(since, until), args=args, default_since=DEFAULT_SINCE,
        refresh=REFRESH_SECONDS, endpoint_url=endpoint_url, **live_args))
