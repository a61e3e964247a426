"""The ``/aiops`` JSON API (the Flask edge: parsing, auth, status codes)."""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, jsonify, request
from sqlalchemy import select

import telemetry
from aiops import delivery, metrics
from aiops.auth import require_token
from aiops.cycle import run_claimed
from aiops.incidents import TransitionError
from aiops.models import Incident
from aiops.notify import human_transition
from aiops.reports import with_report
from telemetry.db import begin_write, db

bp = Blueprint("aiops", __name__, url_prefix="/aiops")
ANALYZE_WAIT = 15.0  # seconds to wait for a running cycle to finish
MAX_BY, MAX_COMMENT = 200, 2000  # characters of "by" and "comment" on an acknowledge or resolve
NOTIFICATION_STATUSES = ("pending", "delivered", "failed", "superseded")


def list_incidents(limit: int = 100) -> tuple[list[Incident], list[Incident]]:
    rows = db.session.scalars(select(Incident).order_by(Incident.last_seen.desc()))
    active, resolved = [], []
    for inc in rows:
        if inc.active:
            active.append(inc)
        elif len(resolved) < limit:
            resolved.append(inc)
    return active, resolved


def get_incident_or_404(incident_id: str, lock: bool = False) -> Incident:
    """The incident; ``lock`` for a write transaction that changes it (PostgreSQL row lock)."""
    incident = db.session.get(Incident, incident_id, with_for_update=lock)
    if incident is None:
        abort(404, description=f"no incident {incident_id!r}")
    return incident


@bp.get("/incidents")
def incidents():
    active, resolved = list_incidents()
    return jsonify(
        active_incidents=[with_report(i.to_dict()) for i in active],
        resolved_incidents=[with_report(i.to_dict()) for i in resolved],
    )


@bp.get("/incidents/<incident_id>")
def incident(incident_id: str):
    return jsonify(with_report(get_incident_or_404(incident_id).to_dict()))


def _actor() -> tuple[str, str]:
    """Optional JSON ``{"by": ..., "comment": ...}``; anything else is a 400."""
    if not request.get_data():
        return "api", ""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description='the body must be a JSON object like {"by": "alice", "comment": "..."}')
    by, comment = body.get("by", "api"), body.get("comment", "")
    if not isinstance(by, str) or not isinstance(comment, str) or len(by) > MAX_BY \
            or len(comment) > MAX_COMMENT:
        abort(400, description=f"'by' (at most {MAX_BY} characters) and 'comment' (at most {MAX_COMMENT}) "
                               "must be strings")
    return by or "api", comment


def apply_transition(incident_id: str, action: str, by: str, comment: str) -> Incident:
    """Acknowledge or resolve by hand in one write transaction (404 unknown, 409 not allowed now).

    Shared by this API and the incident page's forms (``aiops.pages``).
    """
    begin_write()
    incident = get_incident_or_404(incident_id, lock=True)
    try:
        human_transition(incident, action, time.time(), by, comment, current_app.config)
    except TransitionError as exc:
        db.session.rollback()
        abort(409, description=str(exc))
    db.session.commit()
    return incident


def _transition(incident_id: str, action: str):
    by, comment = _actor()
    return jsonify(with_report(apply_transition(incident_id, action, by, comment).to_dict()))


@bp.post("/incidents/<incident_id>/acknowledge")
@require_token
def acknowledge(incident_id: str):
    return _transition(incident_id, "acknowledge")


@bp.post("/incidents/<incident_id>/resolve")
@require_token
def resolve(incident_id: str):
    return _transition(incident_id, "resolve")


@bp.get("/notifications")
def notifications():
    """Delivery history (newest first; ``?incident=``, ``?status=``, ``?channel=``, ``?limit=``)
    and per-channel stats, the circuit breaker's state among them."""
    args = request.args
    raw = args.get("limit", "100")
    if not (raw.isascii() and raw.isdigit()):  # int() would also take "1_000", " 5" and "+5"
        abort(400, description="'limit' must be an integer")
    limit = int(raw)
    if not 1 <= limit <= 1000:
        abort(400, description="'limit' must be between 1 and 1000")
    status = args.get("status")
    if status is not None and status not in NOTIFICATION_STATUSES:
        abort(400, description=f"'status' must be one of {', '.join(NOTIFICATION_STATUSES)}")
    return jsonify(
        channels=delivery.stats(current_app.config),
        notifications=delivery.history(limit, incident_id=args.get("incident"), status=status,
                                       channel=args.get("channel")),
    )


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
