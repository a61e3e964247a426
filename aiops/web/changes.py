"""``GET /aiops/changes`` on the Flask edge: what is over-represented among one endpoint's slow or
failed spans in a range (:mod:`aiops.web.changes_queries`). The endpoint and incident pages show the
same answer as their "What changed" table (``templates/_changes.html``), rendered on the server."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, request

from aiops.web import changes_queries as queries

api = Blueprint("changes", __name__, url_prefix="/aiops")


def init_app(app: Flask) -> None:
    from aiops.web import openapi_changes
    from aiops.web.openapi import add_paths

    app.register_blueprint(api)
    add_paths(app, openapi_changes.paths(), openapi_changes.SCHEMAS)


@api.get("/changes")
def changes():
    """Bad and good span counts of the endpoint (or service) in the range, and the factors best
    first: attribute values, status codes, exception types, peers and callers."""
    return jsonify(queries.read(queries.parse(request.args)))
