"""The ``/aiops`` JSON API (the Flask edge: parsing, auth, status codes)."""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, jsonify
from sqlalchemy import select

import telemetry
from aiops import metrics
from aiops.auth import require_token
from aiops.cycle import run_claimed
from aiops.models import Incident
from telemetry.db import db

bp = Blueprint("aiops", __name__, url_prefix="/aiops")
ANALYZE_WAIT = 15.0  # seconds to wait for a running cycle to finish


def list_incidents(limit: int = 100) -> tuple[list[Incident], list[Incident]]:
    rows = db.session.scalars(select(Incident).order_by(Incident.last_seen.desc()))
    active, resolved = [], []
    for inc in rows:
        if inc.active:
            active.append(inc)
        elif len(resolved) < limit:
            resolved.append(inc)
    return active, resolved


def get_incident_or_404(incident_id: str) -> Incident:
    incident = db.session.get(Incident, incident_id)
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
