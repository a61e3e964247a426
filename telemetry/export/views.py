"""``GET /telemetry/health``: the export pipeline's state (the design's health shape: ``status``,
``healthy``, ``issues``, ``resilience_metrics``), over every process of the installation
(:func:`telemetry.export.metrics.installation`); ``last_error`` is the answering process's."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify

from telemetry.export import exporter_of, metrics, policy

bp = Blueprint("telemetry_health", __name__)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def health_document(exporter) -> dict:
    if exporter is None:
        return {"status": "healthy", "healthy": True, "export": "disabled",
                "message": "export is not configured (AIOPS_EXPORT_OTLP_ENDPOINT is unset)",
                "issues": [], "resilience_metrics": _figures(policy.Figures())}
    figures = metrics.installation(exporter.figures())
    status, issues = policy.verdict(figures)
    return {
        "status": status,
        "healthy": status == "healthy",
        "export": "enabled",
        "endpoint": policy.scrub(exporter.endpoint, exporter.secrets),
        "issues": issues,
        "resilience_metrics": _figures(figures),
    }


def _figures(figures: policy.Figures) -> dict:
    return {
        "queued": figures.queued,
        "exported": figures.exported,
        "retried": figures.retried,
        "dropped": figures.dropped,
        "fallback_bytes": figures.fallback_bytes,
        "breaker_state": figures.breaker_state,
        "breaker_trips": figures.breaker_trips,
        "consecutive_failures": figures.consecutive_failures,
        "last_success": _iso(figures.last_success),
        "last_failure": _iso(figures.last_failure),
        "last_error": figures.last_error,
    }


@bp.get("/telemetry/health")
def telemetry_health():
    """Always 200: the state is in the body (a failing export must not fail a health probe of the app)."""
    return jsonify(health_document(exporter_of(current_app)))
