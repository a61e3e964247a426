"""HTML pages: the dashboard and an incident's page (server-rendered, autoescaped)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from aiops import metrics, waterfall
from aiops.api import get_incident_or_404, list_incidents
from telemetry import store

bp = Blueprint("pages", __name__)


@bp.get("/")
def dashboard():
    active, resolved = list_incidents(limit=20)
    return render_template(
        "dashboard.html",
        endpoints=metrics.current(current_app.config),
        active=active,
        resolved=resolved,
        window_s=current_app.config["AIOPS_METRICS_WINDOW"],
    )


@bp.get("/incidents/<incident_id>")
def incident_page(incident_id: str):
    incident = get_incident_or_404(incident_id)
    rows = []
    if incident.trace_id:
        rows = waterfall.layout(store.trace_spans([incident.trace_id]).get(incident.trace_id, []))
    return render_template("incident.html", incident=incident, data=incident.to_dict(), rows=rows)
