"""Charts on the Flask edge: ``GET /aiops/series`` and the endpoint page
``/services/<service>/endpoints/<endpoint>``.

The page is whole without script: it renders the same series as a table (and a
``<noscript>`` refresh), its incidents, its slowest and failed traces and what changed among its
bad spans (:mod:`aiops.web.changes_queries`). With script,
``static/charts.js`` draws the series with uPlot (``static/vendor/uplot``, no CDN; the CSP
allows no inline script, so the data reaches it through ``data-`` attributes and fetches).

**Live, by conditional polling** (:mod:`aiops.web.live`, which says why not server-sent events).
The page asks for itself again with ``If-None-Match`` (``static/live.js``); until a cycle
finishes the answer is a 304. When one does, its ``data-live`` parts are swapped in and the
charts ask ``/aiops/series`` again, with their own ETag (:func:`aiops.web.series_queries.etag`).

Names come from telemetry: a service or endpoint may hold ``/``, ``%``, ``?``, spaces or markup.
The route takes any text (a service runs up to the first ``/endpoints/``, the endpoint to the
end; slashes are not merged), and the page only ever prints them through Jinja's escaping or, in
the script, ``textContent``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, jsonify, render_template, request, url_for
from werkzeug.routing import BaseConverter

from aiops.settings import current_settings
from aiops.web import changes_queries, errors, live
from aiops.web import series_queries as queries

api = Blueprint("series", __name__, url_prefix="/aiops")
pages = errors.html_pages(Blueprint("charts", __name__))


class _Service(BaseConverter):
    """Any text up to the first ``/endpoints/`` (service names may hold slashes)."""

    regex = ".+?"
    part_isolating = False


class _Endpoint(BaseConverter):
    """Any text to the end of the path (span names hold slashes, even leading ones)."""

    regex = ".+"
    part_isolating = False


pages.record_once(lambda state: state.app.url_map.converters.update(
    service_name=_Service, endpoint_name=_Endpoint))


@pages.app_template_global("series_url")
def series_url(service: str, endpoint: str, args: Mapping[str, str]) -> str:
    """``/aiops/series?...`` for an endpoint (``url_for`` cannot take a parameter named endpoint)."""
    query = {"service": service, "endpoint": endpoint, **{k: v for k, v in args.items() if v is not None}}
    return f"{url_for('series.series')}?{urlencode(query, quote_via=quote)}"


@api.get("/series")
def series():
    """One endpoint's latency (p50, p95), error rate and requests per bucket, its baseline and the
    incidents in the range; 304 to ``If-None-Match`` until the next detection cycle."""
    q = queries.parse(request.args)
    tag = queries.etag(q)
    if tag in request.if_none_match:
        response = Response(status=304)
    else:
        response = jsonify(queries.read(q, current_settings()))
    response.set_etag(tag)
    response.headers["Cache-Control"] = "no-cache"
    return response


@pages.get("/services/<service_name:service>/endpoints/<endpoint_name:name>", merge_slashes=False)
def endpoint_page(service: str, name: str):
    """Live (:func:`aiops.web.live.page`): a 304 to ``live.js``' poll until the next cycle."""
    q = queries.parse(request.args, service, name)
    return live.page(lambda live_args: render_template(
        "endpoint.html",
        data=queries.read(q, current_settings()),
        query=q,
        traces=queries.traces(q),
        changes=changes_queries.read(
            changes_queries.Query(q.service, q.endpoint, q.plan.since, q.plan.until)),
        ranges=queries.RANGES,
        since=q.args.get("since", queries.DEFAULT_SINCE),
        series_url=series_url(q.service, q.endpoint, q.args),
        poll=queries.poll_seconds(),
        now=time.time(),
        **live_args,
    ))
