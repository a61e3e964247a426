"""The ``/aiops`` JSON API (the Flask edge: parsing, auth, status codes)."""

from __future__ import annotations

import time

from flask import Blueprint, abort, jsonify, request
from sqlalchemy import select

import telemetry
from aiops import metrics, on_demand, outbox
from aiops.auth import require_token
from aiops.cycle import run_claimed
from aiops.incidents import TransitionError
from aiops.models import Incident
from aiops.settings import current_settings
from telemetry.db import begin_write, db

bp = Blueprint("aiops", __name__, url_prefix="/aiops")
ANALYZE_WAIT = 60.0  # seconds to wait for the worker's answer (a cycle running already, then ours)
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
        active_incidents=[i.to_dict() for i in active],
        resolved_incidents=[i.to_dict() for i in resolved],
    )


@bp.get("/incidents/<incident_id>")
def incident(incident_id: str):
    return jsonify(get_incident_or_404(incident_id).to_dict())


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
        outbox.human_transition(incident, action, time.time(), by, comment, current_settings())
    except TransitionError as exc:
        db.session.rollback()
        abort(409, description=str(exc))
    db.session.commit()
    return incident


def _transition(incident_id: str, action: str):
    by, comment = _actor()
    return jsonify(apply_transition(incident_id, action, by, comment).to_dict())


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
        channels=outbox.stats(current_settings()),
        notifications=outbox.history(limit, incident_id=args.get("incident"), status=status,
                                     channel=args.get("channel")),
    )


@bp.get("/metrics")
def endpoint_metrics():
    return jsonify(metrics=metrics.current(current_settings()))


@bp.post("/analyze")
@require_token
def analyze():
    """Run one detection cycle now and return its summary.

    The worker process runs it when one is alive (this request waits on the
    doorbell for its answer); with no worker (a single-process app), this
    process runs it.
    """
    telemetry.span_buffer().flush()  # what this process recorded so far is in the cycle
    if on_demand.worker_alive():
        summary = on_demand.ask(ANALYZE_WAIT)
        if summary is None:
            abort(503, description=f"the worker did not answer within {ANALYZE_WAIT:g} s; try again")
        return jsonify(summary)
    # No worker: this process runs it, after one flush interval for the other web workers' buffers.
    time.sleep(current_settings().flush_interval * 1.5)
    summary = run_claimed(current_settings(), force=True)
    if summary is None:
        abort(409, description="another detection cycle is still running; try again")
    return jsonify(summary)
