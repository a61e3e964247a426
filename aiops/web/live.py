"""Live pages by conditional polling: what a live page's answer depends on in the store, as an ETag
(the detection cycles run and the incidents' changes: opened, acknowledged, resolved, seen again),
and the 304 that answers a poll while it stands.

**Why polling, not server-sent events.** gunicorn's ``gthread`` workers have a few threads each. An
SSE stream (or a long poll) holds one for as long as a tab stays open: ten open dashboards would
take every thread of a small install. A conditional poll holds one for about a millisecond every
:data:`POLL_SECONDS` (two single-row reads and no span, no template: ``bench/live.py``), passes
through every proxy and needs no reconnect logic. So a page (``static/live.js``) asks for its own
address again with ``If-None-Match``; it gets a 304 until a cycle finishes or an incident changes,
then the page rendered once, whose ``data-live`` parts it swaps in: a new incident shows within
:data:`POLL_SECONDS` of its cycle, with no reload and no second rendering path in script.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from flask import Response, make_response, request
from sqlalchemy import case, func, select

from aiops.store.models import DetectionState, Incident
from telemetry.db import db

POLL_SECONDS = 2  # how often a live page asks: a new incident shows within a few seconds


def etag(*question) -> str:
    """A strong validator of the answer to ``question`` (the request's own parameters) until the
    next cycle or incident change."""
    state = db.session.execute(select(DetectionState.cycles, DetectionState.last_cycle_at)).first()
    acknowledged = func.sum(case((Incident.status == "acknowledged", 1), else_=0))
    changed = db.session.execute(select(func.count(), func.max(Incident.last_seen),
                                        func.max(Incident.resolved_at), acknowledged)).first()
    key = repr((question, tuple(state or ()), tuple(changed or ())))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def page(render: Callable[[dict], object]) -> Response:
    """A live page: a 304 while the client's ``If-None-Match`` holds the page's ETag (its address and
    :func:`etag`), else ``render(live_args)``, the page, whose template gets ``live_args`` (the ETag
    and the poll interval, for ``templates/_live_status.html``). Never stored by the browser, so a
    reload without script always renders it anew."""
    tag = etag("page", request.full_path)
    if request.if_none_match.contains(tag):
        response = Response(status=304)
    else:
        response = make_response(render({"live_etag": tag, "live_poll": POLL_SECONDS}))
    response.set_etag(tag)
    response.headers["Cache-Control"] = "no-store"
    return response
