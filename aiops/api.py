"""The ``/aiops`` JSON API (the Flask edge: parsing, auth, status codes)."""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, jsonify, request

import telemetry
from aiops import delivery, incident_service, metrics
from aiops.auth import require_token
from aiops.cycle import run_claimed

bp = Blueprint("aiops", __name__, url_prefix="/aiops")
ANALYZE_WAIT = 15.0  # seconds to wait for a running cycle to finish


@bp.get("/incidents")
def incidents():
    """Active and resolved incidents, newest first: ``?limit=`` per list, ``?status=``,
    ``?severity=``, ``?service=`` (the root cause's), ``?cursor=`` (a page's ``next``)."""
    filters, limit, cursor = incident_service.page_query(request.args)
    page = incident_service.list_incidents(filters, limit, cursor)
    return jsonify(
        active_incidents=[incident_service.to_json(i) for i in page.active],
        resolved_incidents=[incident_service.to_json(i) for i in page.resolved],
        next=page.next,
    )


@bp.get("/incidents/<incident_id>")
def incident(incident_id: str):
    return jsonify(incident_service.to_json(incident_service.get(incident_id)))


def _actor() -> tuple[str, str]:
    """Optional JSON ``{"by": ..., "comment": ...}``; anything else is a 400."""
    if not request.get_data():
        return "api", ""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description='the body must be a JSON object like {"by": "alice", "comment": "..."}')
    return incident_service.check_actor(body.get("by", "api"), body.get("comment", ""), "api")


@bp.post("/incidents/<incident_id>/acknowledge")
@require_token
def acknowledge(incident_id: str):
    by, comment = _actor()
    return jsonify(incident_service.to_json(
        incident_service.acknowledge(incident_id, by, comment, current_app.config)))


@bp.post("/incidents/<incident_id>/resolve")
@require_token
def resolve(incident_id: str):
    by, comment = _actor()
    return jsonify(incident_service.to_json(
        incident_service.resolve(incident_id, by, comment, current_app.config)))


@bp.get("/notifications")
def notifications():
    """Delivery history (newest first; ``?incident=``, ``?status=``, ``?channel=``, ``?limit=``,
    ``?cursor=``) and per-channel stats, the circuit breaker's state among them."""
    rows, cursor = incident_service.notification_history(request.args)
    return jsonify(channels=delivery.stats(current_app.config), notifications=rows, next=cursor)


@bp.get("/metrics")
def endpoint_metrics():
    return jsonify(metrics=metrics.current(current_app.config))


@bp.post("/analyze")
@require_token
def analyze():
    """Run one detection cycle now (waits for a cycle already running elsewhere)."""
    # Spans recorded before this call may still sit in a worker's buffer: flush
    # ours, and give the other workers one flush interval to write theirs.
    telemetry.span_buffer().flush()
    time.sleep(current_app.config["AIOPS_FLUSH_INTERVAL"] * 1.5)
    deadline = time.monotonic() + ANALYZE_WAIT
    while True:
        summary = run_claimed(current_app.config, force=True)
        if summary is not None:
            return jsonify(summary)
        if time.monotonic() > deadline:
            abort(409, description="another detection cycle is still running; try again")
        time.sleep(0.2)
