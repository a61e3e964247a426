"""Trace-query rules on the Flask edge: ``/aiops/rules`` (list, create), ``/aiops/rules/<id>`` (read,
replace, delete), ``GET /aiops/alerts`` (newest first, paginated) and the ``/rules`` page. Bodies are
checked by :mod:`aiops.rules.spec`: a wrong one is a 400 whose message starts with the field's name
(a bad query's names its line and column) and changes nothing. Mutations need the API token.
Nothing here evaluates a rule: the worker does (:mod:`aiops.rules.evaluation`).
"""

from __future__ import annotations

import time

from flask import Blueprint, abort, jsonify, render_template, request

from aiops.rules import service as rule_service
from aiops.rules.spec import AGGREGATIONS, PRESETS
from aiops.settings import current_settings
from aiops.web import errors, pagination
from aiops.web.auth import require_token

api = Blueprint("rules", __name__, url_prefix="/aiops")
pages = errors.html_pages(Blueprint("rule_pages", __name__))
DEFAULT_ALERTS, MAX_ALERTS = 50, 500
CURSOR = ("alerts",)


def _configured() -> None:
    rule_service.load_config_once(current_settings().rules_file, time.time())


def _body() -> object:
    body = request.get_json(silent=True)
    if body is None:
        abort(400, description="body: must be a JSON object (Content-Type: application/json)")
    return body


@api.get("/rules")
def list_rules():
    _configured()
    return jsonify(rules=[rule_service.to_json(r) for r in rule_service.list_rules()])


@api.post("/rules")
@require_token
def create_rule():
    body = _body()
    return jsonify(rule_service.to_json(rule_service.create(body, time.time()))), 201


@api.get("/rules/<int:rule_id>")
def get_rule(rule_id: int):
    _configured()
    return jsonify(rule_service.to_json(rule_service.get(rule_id)))


@api.put("/rules/<int:rule_id>")
@require_token
def update_rule(rule_id: int):
    body = _body()
    rule_service.get(rule_id)  # 404 before the body's 400
    return jsonify(rule_service.to_json(rule_service.update(rule_id, body, time.time())))


@api.delete("/rules/<int:rule_id>")
@require_token
def delete_rule(rule_id: int):
    rule_service.delete(rule_id)
    return "", 204


@api.get("/alerts")
def list_alerts():
    """``{"alerts": [...], "next": cursor | null}``, newest first (``?limit=``, ``?cursor=``)."""
    try:
        limit = pagination.parse_limit(request.args.get("limit"), DEFAULT_ALERTS, MAX_ALERTS)
        cursor = request.args.get("cursor")
        after = pagination.decode(cursor, CURSOR, int)["alerts"] if cursor is not None else None
    except ValueError as exc:
        abort(400, description=str(exc))
    if cursor is not None and after is None:  # the last page's cursor: nothing after it
        return jsonify(alerts=[], next=None)
    rows = rule_service.alerts_page(limit + 1, after)
    more, rows = len(rows) > limit, rows[:limit]
    following = pagination.encode({"alerts": (rows[-1].first_seen, rows[-1].id)}) if more else None
    return jsonify(alerts=[rule_service.alert_json(a) for a in rows], next=following)


@pages.get("/rules")
def rules_page():
    _configured()
    rules = [rule_service.to_json(r) for r in rule_service.list_rules()]
    alerts = [rule_service.alert_json(a) for a in rule_service.alerts_page(DEFAULT_ALERTS, None)]
    return render_template("rules.html", rules=rules, alerts=alerts, presets=PRESETS,
                           aggregations=AGGREGATIONS, interval=current_settings().rules_interval)
