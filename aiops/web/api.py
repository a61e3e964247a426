"""The ``/aiops`` JSON API (the Flask edge: parsing, auth, status codes)."""

from __future__ import annotations

import time

from flask import Blueprint, abort, jsonify, request

import telemetry
from aiops import outbox
from aiops.jobs import on_demand
from aiops.jobs.cycle import run_claimed
from aiops.settings import current_settings
from aiops.silences import service as silence_service
from aiops.web import endpoints as metrics
from aiops.web import incident_queries as incident_service
from aiops.web import log_queries as log_service
from aiops.web import metric_queries
from aiops.web.auth import require_token

bp = Blueprint("aiops", __name__, url_prefix="/aiops")
ANALYZE_WAIT = 60.0  # seconds to wait for the worker's answer (a cycle running already, then ours)


@bp.get("/incidents")
def incidents():
    """Active and resolved incidents, newest first: ``?limit=`` per list, ``?status=``,
    ``?severity=``, ``?service=`` (the root cause's), ``?cursor=`` (a page's ``next``)."""
    filters, limit, cursor = incident_service.page_query(request.args)
    page = incident_service.list_incidents(filters, limit, cursor)
    live = silence_service.active(time.time())  # read once for the page
    return jsonify(
        active_incidents=[incident_service.to_json(i, live) for i in page.active],
        resolved_incidents=[incident_service.to_json(i, live) for i in page.resolved],
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
        incident_service.acknowledge(incident_id, by, comment, current_settings())))


@bp.post("/incidents/<incident_id>/resolve")
@require_token
def resolve(incident_id: str):
    by, comment = _actor()
    return jsonify(incident_service.to_json(
        incident_service.resolve(incident_id, by, comment, current_settings())))


@bp.get("/logs")
def logs():
    """Log records, newest first: ``?service=``, ``?severity=`` (lowest: number or name), ``?text=``,
    ``?trace_id=``, ``?template_id=``, ``?from=``/``?to=`` (epoch seconds or ISO 8601), ``?limit=``,
    ``?cursor=``."""
    _, rows, cursor = log_service.list_logs(request.args)
    return jsonify(logs=[log_service.to_json(r) for r in rows], next=cursor)


@bp.get("/logs/templates")
def log_templates():
    """The templates mined from the logs, newest first: ``?service=``, ``?text=``, ``?limit=``,
    ``?cursor=``."""
    rows, cursor = log_service.list_templates(request.args)
    return jsonify(templates=[log_service.template_json(t) for t in rows], next=cursor)


@bp.get("/metrics/points")
def metric_points():
    """Metric points (OTLP ``/v1/metrics``, reduced to numeric series), newest first: ``?service=``,
    ``?pod=``, ``?host=``, ``?name=`` (exact, or a prefix ending in ``*``), ``?from=``/``?to=``,
    ``?limit=``, ``?cursor=``."""
    rows, cursor = metric_queries.list_points(request.args)
    return jsonify(points=[metric_queries.to_json(p) for p in rows], next=cursor)


@bp.get("/notifications")
def notifications():
    """Delivery history (newest first; ``?incident=``, ``?status=``, ``?channel=``, ``?limit=``,
    ``?cursor=``) and per-channel stats, the circuit breaker's state among them."""
    rows, cursor = incident_service.notification_history(request.args)
    return jsonify(channels=outbox.stats(current_settings()), notifications=rows, next=cursor)


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
