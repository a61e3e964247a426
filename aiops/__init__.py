"""The AIOps product: one package per pipeline stage, importing one way (import-linter,
``pyproject.toml``): ``web | cli`` -> ``jobs`` -> ``rules`` -> ``outbox`` -> ``slos | silences``
-> ``incidents`` -> ``rca`` -> ``logs`` -> ``detection`` -> ``store`` -> ``settings | instruments | owner``
-> ``kinds``. Any of it may import telemetry; none of it imports ``simulation``. This file holds
only the product's own routes and ``init_app``, which imports the blueprints when it runs, so
importing any aiops module stays cheap.
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
          "/logs", "/slos", "/silences", "/silences/", "/rules", "/telemetry/", "/api/", "/traces",
          "/traces/", "/map", "/services/")


def service_names(own_service: str) -> ServiceNames:
    from telemetry.rows import ServiceNames

    return ServiceNames(own=own_service, apart_service=SERVICE, apart=ROUTES)


def init_app(app: Flask) -> None:
    from aiops.cli import aiops_cli
    from aiops.logs import feed as logfeed
    from aiops.rules.metrics import trace_anomalies
    from aiops.silences.metrics import active_silences
    from aiops.slos.metrics import slo_gauges
    from aiops.store import models  # noqa: F401 - models register tables
    from aiops.web import (
        changes,
        charts,
        errors,
        openapi_charts,
        openapi_map,
        openapi_metrics,
        openapi_rules,
        openapi_silences,
        openapi_slos,
        openapi_tempo,
        openapi_traces,
        security,
        store_gauges,
    )
    from aiops.web import map as service_map
    from aiops.web.api import bp as api_bp
    from aiops.web.health import bp as health_bp
    from aiops.web.openapi import add_paths
    from aiops.web.openapi import bp as openapi_bp
    from aiops.web.pages import bp as pages_bp
    from aiops.web.rules import api as rules_api
    from aiops.web.rules import pages as rules_pages
    from aiops.web.silences import api as silences_api
    from aiops.web.silences import pages as silences_pages
    from aiops.web.slos import api as slos_api
    from aiops.web.slos import pages as slos_pages
    from aiops.web.tempo_api import bp as tempo_bp
    from aiops.web.traces import api as traces_api
    from aiops.web.traces import pages as traces_pages
    from telemetry.selfmetrics import add_collector

    errors.init_app(app)
    security.init_app(app)
    app.add_template_filter(models.iso, "iso")
    for blueprint in (health_bp, api_bp, pages_bp, openapi_bp, slos_api, slos_pages, silences_api,
                      silences_pages, rules_api, rules_pages, tempo_bp, traces_api, traces_pages,
                      service_map.api, service_map.pages, charts.api, charts.pages):
        app.register_blueprint(blueprint)
    for document in (openapi_slos, openapi_silences, openapi_tempo, openapi_traces, openapi_rules,
                     openapi_map, openapi_charts, openapi_metrics):
        add_paths(app, document.paths(), document.SCHEMAS)
    changes.init_app(app)  # GET /aiops/changes and its OpenAPI description
    # GET /metrics (telemetry's route) also reads these from the store at scrape time.
    store_gauges.init_app(app)
    add_collector(app, "slos", slo_gauges)
    add_collector(app, "silences", active_silences)
    add_collector(app, "rules", trace_anomalies)
    app.cli.add_command(aiops_cli)
    logfeed.register(app, logfeed.StoreFeed())  # cycles read the stored log lines (none: trace-only)
