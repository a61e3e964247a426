"""JSON-or-HTML errors in one place.

API and demo routes answer ``{"error": "<status name>", "message": "..."}``;
the HTML pages (``/`` and ``/incidents/...``) get an HTML error page.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


def wants_html() -> bool:
    path = request.path
    return path == "/" or path.startswith("/incidents/")


def _response(exc: HTTPException):
    code = exc.code or 500
    if wants_html():
        return render_template("error.html", code=code, name=exc.name, message=exc.description), code
    response = jsonify(error=exc.name, message=exc.description)
    response.status_code = code
    for name, value in (exc.get_headers() or []):
        if name.lower() in {"retry-after", "www-authenticate", "allow"}:
            response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return _response(exc)

    @app.errorhandler(InternalServerError)
    def _internal_error(exc: InternalServerError):
        original = getattr(exc, "original_exception", None)
        if original is not None:
            exc = InternalServerError(description=f"{type(original).__name__}: {original}")
        return _response(exc)
