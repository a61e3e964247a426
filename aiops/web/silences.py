"""Silences at the Flask edge: the ``/aiops/silences`` JSON API and the ``/silences`` page.

The API (``api``): ``GET`` lists (``?state=``), ``POST`` creates from ``{"matchers": [...],
"starts_at", "ends_at", "created_by", "comment"}``, ``GET <id>`` reads, ``DELETE <id>`` expires
now. A bad body is a 400 naming the field (:class:`aiops.silences.InvalidSilence`, mapped in
:mod:`aiops.web.errors`); mutations need the API token (:func:`aiops.web.auth.require_token`).

The page (``pages``) lists them with a form to create one and a button to expire each. The incident
page's "Silence this" link opens it with the form filled in from the incident (as Alertmanager's
"Silence" button does), and the form then goes back to the incident. Its forms are guarded as the
incident page's are (:func:`aiops.web.auth.check_form`).
"""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, redirect, request, url_for

from aiops.silences import InvalidSilence, matchers, specs
from aiops.silences import service as silence_service
from aiops.store.models import iso
from aiops.web import auth, errors
from aiops.web import incident_queries as incident_service
from aiops.web.auth import require_token

api = Blueprint("silences_api", __name__, url_prefix="/aiops")
pages = errors.html_pages(Blueprint("silences", __name__))
FORM_ACTOR = "web"
# The page form's durations (seconds), as the select offers them.
DURATIONS = {"1800": "30 min", "3600": "1 h", "7200": "2 h", "14400": "4 h", "28800": "8 h",
             "86400": "1 day", "259200": "3 days", "604800": "7 days"}
DEFAULT_DURATION = "7200"
NOTICES = {"created": "Silence created.", "expired": "Silence expired."}


def _json(silence, now: float) -> dict:
    return silence_service.to_json(silence, now)


# -- API ---------------------------------------------------------------------------


@api.get("/silences")
def list_silences():
    """Active, pending, and the newest expired silences (``?state=`` one of them)."""
    now = time.time()
    wanted = request.args.get("state")
    if wanted is not None and wanted not in specs.STATES:
        raise InvalidSilence("state", f"must be one of {', '.join(specs.STATES)}")
    rows = [_json(s, now) for s in silence_service.listed(now)]
    return jsonify(silences=[r for r in rows if wanted is None or r["state"] == wanted])


@api.post("/silences")
@require_token
def create():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidSilence("body", "must be a JSON object (Content-Type: application/json) like "
                                     '{"matchers": [{"name": "service", "value": "shop"}], "ends_at": "..."}')
    now = time.time()
    return jsonify(_json(silence_service.create(body, now), now))


@api.get("/silences/<silence_id>")
def get(silence_id: str):
    return jsonify(_json(silence_service.get(silence_id), time.time()))


@api.delete("/silences/<silence_id>")
@require_token
def expire(silence_id: str):
    now = time.time()
    return jsonify(_json(silence_service.expire(silence_id, now), now))


# -- page ----------------------------------------------------------------------------


def prefill(args) -> tuple[dict[str, str], str | None]:
    """The create form's values from ``?service=&endpoint=&kind=&severity=`` (the incident page's
    "Silence this" link), and ``?incident=`` to go back to; over-long values are left out."""
    values = {name: args.get(name, "") for name in matchers.NAMES}
    values = {name: v if len(v) <= matchers.MAX_VALUE else "" for name, v in values.items()}
    incident = args.get("incident", "")
    return values, incident if 0 < len(incident) <= incident_service.MAX_ID_CHARS else None


@pages.get("/silences")
def silences_page():
    now = time.time()
    values, incident = prefill(request.args)
    return auth.form_page(
        "silences.html", NOTICES,
        silences=[_json(s, now) for s in silence_service.listed(now)],
        names=matchers.NAMES,
        values=values,
        incident=incident,
        durations=DURATIONS,
        default_duration=DEFAULT_DURATION,
    )


def form_body(form, now: float) -> dict:
    """The API body a page form describes: a matcher per filled label field (``<name>_regex``
    checked: a regex), and ``duration`` (one of :data:`DURATIONS`) from ``now``."""
    duration = form.get("duration", DEFAULT_DURATION)
    if duration not in DURATIONS:
        raise InvalidSilence("duration", f"must be one of {', '.join(DURATIONS)} (seconds)")
    return {
        "matchers": [{"name": name, "value": form.get(name, "").strip(),
                      "regex": form.get(f"{name}_regex") == "on"}
                     for name in matchers.NAMES if form.get(name, "").strip()],
        "ends_at": iso(now + int(duration)),
        "created_by": form.get("created_by", ""),
        "comment": form.get("comment", ""),
    }


@pages.post("/silences")
def create_from_form():
    """Create from the page's form (``incident``: opened from that incident's page, go back to it)."""
    auth.check_form()
    now = time.time()
    incident_id = request.form.get("incident", "")
    if incident_id:
        incident_service.get(incident_id)  # 404 before anything is stored
    silence_service.create(form_body(request.form, now), now, default_by=FORM_ACTOR)
    if incident_id:
        return redirect(url_for("pages.incident_page", incident_id=incident_id, done="silenced"), 303)
    return redirect(url_for("silences.silences_page", done="created"), 303)


@pages.post("/silences/<silence_id>/expire")
def expire_from_form(silence_id: str):
    auth.check_form()
    silence_service.expire(silence_id, time.time())
    return redirect(url_for("silences.silences_page", done="expired"), 303)
