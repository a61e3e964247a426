"""The demo shop services and the fault injector (``/simulate/*``), registered only when the demo is on.

The top layer: it may import ``aiops`` and ``telemetry``; neither imports it (import-linter,
``pyproject.toml``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    """The demo's routes exist only when the demo is on (``AIOPS_ENABLE_SIMULATION=1``)."""
    from aiops.settings import settings_of
    from simulation import models  # noqa: F401 - register the table (migrations know it either way)

    if not settings_of(app).enable_simulation:
        return
    from aiops.web.openapi import add_paths
    from simulation import collector, openapi
    from simulation.shop import bp as shop_bp
    from simulation.views import bp as simulate_bp
    from telemetry import export

    exporter = export.exporter_of(app)
    if exporter is not None:  # the export thread asks whether a collector failure is injected
        exporter.blackout = collector.blackout_until(app)
    app.register_blueprint(shop_bp)
    app.register_blueprint(simulate_bp)
    add_paths(app, openapi.paths(), openapi.SCHEMAS)
