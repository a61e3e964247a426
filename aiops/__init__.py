"""The AIOps product: one package per pipeline stage, importing one way (import-linter,
``pyproject.toml``): ``web | cli`` -> ``jobs`` -> ``outbox`` -> ``silences`` -> ``incidents`` -> ``rca``
-> ``logs`` -> ``detection`` -> ``store`` -> ``settings | instruments | owner`` -> ``kinds``. Any of it
may import telemetry; none of it imports ``simulation``. This file holds only the product's own routes and
``init_app``, which imports the blueprints when it runs, so importing any aiops module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing any aiops module runs this file: it must not pull in Flask
    from flask import Flask

    from telemetry.rows import ServiceNames

# The product's own routes: recorded like any request, but under the service "aiops" (which
# AIOPS_IGNORE_SERVICES leaves out of detection), so the dashboard polling itself raises nothing.
SERVICE = "aiops"
ROUTES = ("/", "/aiops/", "/simulate/", "/v1/", "/static/", "/incidents/", "/metrics", "/openapi.json",
          "/logs", "/silences", "/silences/")


def service_names(own_service: str) -> ServiceNames:
    from telemetry.rows import ServiceNames

    return ServiceNames(own=own_service, apart_service=SERVICE, apart=ROUTES)


def init_app(app: Flask) -> None:
    from aiops.cli import aiops_cli
    from aiops.logs import feed as logfeed
    from aiops.silences.metrics import ActiveSilences
    from aiops.store import models  # noqa: F401 - models register tables
    from aiops.web import errors, openapi_silences, security
    from aiops.web.api import bp as api_bp
    from aiops.web.health import bp as health_bp
    from aiops.web.openapi import add_paths
    from aiops.web.openapi import bp as openapi_bp
    from aiops.web.pages import bp as pages_bp
    from aiops.web.silences import api as silences_api
    from aiops.web.silences import pages as silences_pages
    from telemetry import add_scrape_collector

    errors.init_app(app)
    security.init_app(app)
    app.add_template_filter(models.iso, "iso")
    app.register_blueprint(health_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(silences_api)
    app.register_blueprint(silences_pages)
    add_paths(app, openapi_silences.paths(), openapi_silences.SCHEMAS)
    add_scrape_collector(app, ActiveSilences())
    app.cli.add_command(aiops_cli)
    logfeed.register(app, logfeed.StoreFeed())  # cycles read the stored log lines (none: trace-only)

