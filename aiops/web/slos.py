"""SLOs on the Flask edge: ``/aiops/slos`` (list, create), ``/aiops/slos/<id>`` (read, change,
delete) and the ``/slos`` page. Bodies are checked by :mod:`aiops.slos.spec`; a wrong one is a 400
whose message starts with the field's name, and changes nothing. Mutations need the API token."""

from __future__ import annotations

import time

from flask import Blueprint, abort, jsonify, render_template, request

from aiops.settings import current_settings
from aiops.slos import rules
from aiops.slos import service as slo_service
from aiops.slos.spec import SpecError
from aiops.web import errors
from aiops.web.auth import require_token

api = Blueprint("slos", __name__, url_prefix="/aiops/slos")
pages = errors.html_pages(Blueprint("slo_pages", __name__))
MAX_ID = 2**31 - 1


def _configured() -> None:
    slo_service.load_config_once(current_settings().slo_file, time.time())


def _found(slo_id: int):
    if slo_id > MAX_ID:  # past the column's range (PostgreSQL would refuse the query)
        abort(404, description=f"no SLO {slo_id}")
    try:
        return slo_service.get(slo_id)
    except slo_service.SloNotFound as exc:
        abort(404, description=str(exc))


def _body() -> object:
    body = request.get_json(silent=True)
    if body is None:
        abort(400, description="body: must be a JSON object (Content-Type: application/json)")
    return body


def _change(action):
    """Run an edit; a wrong field is a 400 and a taken name a 409 (nothing changed either way)."""
    try:
        return action()
    except SpecError as exc:
        abort(400, description=str(exc))
    except slo_service.SloConflict as exc:
        abort(409, description=str(exc))


@api.get("")
def list_slos():
    _configured()
    return jsonify(slos=[slo_service.to_json(s) for s in slo_service.list_slos()])


@api.post("")
@require_token
def create_slo():
    body = _body()
    slo = _change(lambda: slo_service.create(body, time.time()))
    return jsonify(slo_service.to_json(slo)), 201


@api.get("/<int:slo_id>")
def get_slo(slo_id: int):
    _configured()
    return jsonify(slo_service.to_json(_found(slo_id)))


@api.put("/<int:slo_id>")
@require_token
def update_slo(slo_id: int):
    body = _body()
    _found(slo_id)
    slo = _change(lambda: slo_service.update(slo_id, body, time.time()))
    return jsonify(slo_service.to_json(slo))


@api.delete("/<int:slo_id>")
@require_token
def delete_slo(slo_id: int):
    _found(slo_id)
    slo_service.delete(slo_id)
    return "", 204


@pages.get("/slos")
def slos_page():
    _configured()
    slos = [slo_service.to_json(s) for s in slo_service.list_slos()]
    return render_template("slos.html", slos=slos, windows=list(rules.WINDOWS), rules=rules.ALERT_RULES)
