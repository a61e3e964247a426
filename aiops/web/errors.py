"""JSON-or-HTML errors in one place.

API and demo routes answer ``{"error": "<status name>", "message": "..."}``;
the routes of a blueprint that declared itself HTML (:func:`html_pages`: the
dashboard, incident and log pages) get an HTML error page, found from the app's
URL map: the route that served the request, or for a wrong method (405) the
route that has the path. A path no route has is JSON. The incident rules'
errors (:mod:`aiops.incidents.errors`), the silences' (:mod:`aiops.silences.errors`) and the
queries' bad input (:class:`aiops.web.incident_queries.InvalidInput`) carry no HTTP:
:data:`DOMAIN_STATUS` is where they become a status, for the API and the pages
alike.

A 5xx tells the user what they can act on and nothing an attacker could use:
an unexpected exception becomes "internal error" with a ``request_id`` (also
in the ``X-Request-Id`` header), and the exception, with its SQL, database
host and stack, goes to the log under that id. An exception may opt in to
showing its text by setting ``expose = True`` (the demo's injected faults do:
the text is theirs, not the database's).
"""

from __future__ import annotations

import logging
import secrets

from flask import Blueprint, Flask, current_app, g, jsonify, make_response, render_template, request
from werkzeug.exceptions import BadRequest, Conflict, HTTPException, InternalServerError, NotFound

from aiops.incidents.errors import IncidentNotFound, InvalidTransition
from aiops.rules.service import RuleConflict, RuleNotFound
from aiops.silences import InvalidSilence, SilenceNotFound
from aiops.slos.spec import SpecError
from aiops.web.incident_queries import InvalidInput

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
HTML_EXTENSION = "aiops_html_blueprints"  # app.extensions: names of the blueprints that serve HTML pages
DOMAIN_STATUS: dict[type[Exception], type[HTTPException]] = {
    IncidentNotFound: NotFound,
    InvalidTransition: Conflict,
    InvalidInput: BadRequest,
    InvalidSilence: BadRequest,
    SilenceNotFound: NotFound,
    SpecError: BadRequest,  # an SLO's or a rule's body: the message starts with the field's name
    RuleNotFound: NotFound,
    RuleConflict: Conflict,
}


def html_pages(bp: Blueprint) -> Blueprint:
    """Declare that ``bp`` serves HTML pages: an error on one of its routes is the HTML error page."""
    def note(state) -> None:  # the prefix its endpoints get in this app (a nested one's too)
        name = f"{state.name_prefix}.{state.name}".lstrip(".")
        state.app.extensions.setdefault(HTML_EXTENSION, set()).add(name)

    bp.record_once(note)
    return bp


def _endpoint() -> str | None:
    """The endpoint of the route for this request's path: the one that matched or, when none took
    the method (a 405), one that takes another; None when no route has the path (a 404)."""
    if request.url_rule is not None:
        return request.url_rule.endpoint
    adapter = current_app.create_url_adapter(request)
    methods = sorted(adapter.allowed_methods()) if adapter is not None else []
    if not methods:
        return None
    try:
        return adapter.match(method=methods[0])[0]
    except HTTPException:  # a redirect to the path with a trailing slash, say: no route has this one
        return None


def wants_html() -> bool:
    endpoint = _endpoint()
    blueprint = endpoint.rpartition(".")[0] if endpoint else ""
    return blueprint in current_app.extensions.get(HTML_EXTENSION, ())


def request_id() -> str:
    """This request's id for error reports: random, never taken from the client (log injection)."""
    if "aiops_request_id" not in g:
        g.aiops_request_id = secrets.token_hex(8)
    return g.aiops_request_id


def _response(exc: HTTPException):
    code = exc.code or 500
    rid = request_id() if code >= 500 else None
    if wants_html():
        response = make_response(render_template("error.html", code=code, name=exc.name,
                                                 message=exc.description, request_id=rid), code)
    else:
        body = {"error": exc.name, "message": exc.description}
        if rid:
            body["request_id"] = rid
        response = jsonify(body)
        response.status_code = code
    for name, value in (exc.get_headers() or []):
        if name.lower() in {"retry-after", "www-authenticate", "allow"}:
            response.headers[name] = value
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    return response


def public_message(original: BaseException | None) -> str:
    """What a 500 may say about ``original``: its text only if it opted in (``expose``)."""
    if original is not None and getattr(original, "expose", False):
        return str(original)
    return "internal error; the server log has the details under this request id"


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return _response(exc)

    for kind, status in DOMAIN_STATUS.items():
        app.register_error_handler(kind, lambda exc, status=status: _response(status(description=str(exc))))

    @app.errorhandler(InternalServerError)
    def _internal_error(exc: InternalServerError):
        original = getattr(exc, "original_exception", None)
        if original is not None:
            log.error("request %s: %s %s failed", request_id(), request.method, request.path,
                      exc_info=(type(original), original, original.__traceback__))
            exc = InternalServerError(description=public_message(original))
        return _response(exc)
