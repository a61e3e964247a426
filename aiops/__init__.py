"""Baselines, detection, RCA, incidents, scheduling, and the ``/aiops`` API and pages."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from aiops import errors, models, scheduler, security  # noqa: F401 - models register tables
    from aiops.api import bp as api_bp
    from aiops.cli import aiops_cli
    from aiops.health import bp as health_bp
    from aiops.openapi import bp as openapi_bp
    from aiops.pages import bp as pages_bp

    errors.init_app(app)
    security.init_app(app)
    app.add_template_filter(models.iso, "iso")
    app.register_blueprint(health_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(openapi_bp)
    app.cli.add_command(aiops_cli)

    if app.config["AIOPS_SCHEDULER"] or scheduler.outbound(app.config):

        @app.before_request
        def _start_scheduler():
            # After the fork, in the worker that serves a request; then a no-op.
            if "aiops_scheduler" not in app.extensions:
                scheduler.start(app)
