"""``GET /health``: the product's liveness answer (never the demo's, never behind a token).

It also says what an operator must know before exposing the service: whether
OTLP ingest is open (no token: anyone who can reach ``/v1/traces`` can raise
incidents) and whether the state-changing API is.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from aiops.settings import Settings, current_settings

bp = Blueprint("health", __name__)


def exposure(settings: Settings) -> dict:
    """What is open to anyone who can reach the server, with a warning per open door."""
    ingest_open = settings.ingest_token_required is None
    api_open = not settings.api_token
    warnings = []
    if ingest_open:
        warnings.append("OTLP ingest is open: set AIOPS_INGEST_TOKEN before exposing this service")
    if api_open:
        warnings.append("the API is open: set AIOPS_API_TOKEN before exposing this service")
    return {
        "ingest": "open" if ingest_open else "token",
        "api": "open" if api_open else "token",
        "reads": "token" if settings.protect_reads else "open",
        "warnings": warnings,
    }


@bp.get("/health")
def health():
    return jsonify(status="ok", security=exposure(current_settings()))
