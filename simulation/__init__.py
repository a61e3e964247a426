"""The demo shop services and the fault injector."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from simulation import models  # noqa: F401 - register the table
    from simulation.shop import bp as shop_bp
    from simulation.views import bp as simulate_bp

    app.register_blueprint(shop_bp)
    app.register_blueprint(simulate_bp)
