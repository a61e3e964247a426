"""The service map on the Flask edge: ``GET /aiops/map?since=&until=`` (JSON) and the ``/map`` page.

The map is built from a bounded read of the range's spans (:mod:`telemetry.span_sample`) by
:mod:`aiops.detection.service_map`, then coloured from the active incidents.

**Live, by conditional polling.** The page asks ``GET /aiops/map`` again every
:data:`POLL_SECONDS` with ``If-None-Match``. The ETag is the *version* of what the map shows: the
last detection cycle's id and the active incidents' count and newest ``last_seen`` (two indexed
reads), with the range asked for. While it stands, the answer is a 304 read from those two
statements, with no span read: a request holds a gunicorn thread for milliseconds, where a
server-sent events stream would hold one per open page for as long as it stays open. So the map
changes when a cycle finishes or an incident changes, as the dashboard's figures do. Without
JavaScript the page is the same data as tables, and a ``<noscript>`` refresh.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, render_template, request
from sqlalchemy import select

from aiops.detection import service_map
from aiops.settings import current_settings
from aiops.store.models import Incident, iso
from aiops.web import errors, live
from aiops.web.incident_queries import InvalidInput
from aiops.web.pages import REFRESH_SECONDS
from telemetry import span_sample, times
from telemetry.db import db

api = Blueprint("map", __name__, url_prefix="/aiops")
pages = errors.html_pages(Blueprint("map_pages", __name__))

DEFAULT_SINCE = "15m"
POLL_SECONDS = 2  # the page's conditional poll: a new incident shows within a few seconds
MAX_INCIDENTS = 500  # active incidents read to colour the map (the newest)


def time_range(args, now: float) -> tuple[float, float]:
    """``since`` (default 15 minutes back) and ``until`` (default now): a duration back from now,
    epoch seconds or ISO 8601; anything else, or a range that ends before it starts, is InvalidInput."""
    try:
        return times.time_range(args.get("since"), args.get("until"), now, DEFAULT_SINCE)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def version(args) -> str:
    """The ETag of the map for these arguments: it changes when a cycle finishes or an incident does."""
    return live.etag(args.get("since") or DEFAULT_SINCE, args.get("until") or "")


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


def build(since: float, until: float) -> dict:
    """The map of ``[since, until]`` with its statuses, as ``GET /aiops/map`` answers it."""
    settings = current_settings()
    sample = span_sample.spans_between(since, until, settings.ignore_services)
    graph = service_map.build(sample.spans, until - since, sample.weights, settings.ignore_services)
    service_map.mark(graph, _marks(), settings.error_rate_threshold)
    return {"since": iso(since), "until": iso(until), "spans_read": len(sample.spans),
            "sampled": sample.sampled, **graph}


def endpoint_url(service: str, endpoint: str) -> str:
    """The endpoint page's address (``/services/<service>/endpoints/<endpoint>``, each part quoted)."""
    return f"/services/{quote(service, safe='')}/endpoints/{quote(endpoint, safe='')}"


@api.get("/map")
def map_json():
    """Nodes and caller -> callee edges of ``?since=`` .. ``?until=``; 304 while the ETag stands."""
    now = time.time()
    time_range(request.args, now)  # a bad range is a 400 even when the client holds an ETag
    tag = version(request.args)
    if request.if_none_match.contains(tag):
        response = Response(status=304)
    else:
        response = jsonify(build(*time_range(request.args, now)))
    response.set_etag(tag)
    response.headers["Cache-Control"] = "no-cache"
    return response


@pages.get("/map")
def map_page():
    now = time.time()
    since, until = time_range(request.args, now)
    args = {k: request.args.get(k, "") for k in ("since", "until")}
    return render_template("map.html", data=build(since, until), etag=version(request.args), args=args,
                           default_since=DEFAULT_SINCE, poll_s=POLL_SECONDS, refresh=REFRESH_SECONDS,
                           endpoint_url=endpoint_url)
