"""The AIOps service: ``create_app`` factory, and ``python app.py`` for the demo.

``create_app`` only wires things together: it opens no connection and starts
no thread, so gunicorn can call it in every worker after the fork. The span
writer and the detection scheduler start on a worker's first request.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Flask

import aiops
import simulation
import telemetry
from aiops import settings
from aiops.health import exposure


def create_app(config: dict | None = None) -> Flask:
    """Build the app; ``config`` overrides the environment (tests use it)."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(settings.defaults())
    app.config.update(settings.from_env())
    app.config.update(config or {})
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        db_file = Path(app.instance_path) / "aiops.db"
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{db_file}"
    # Assigned, not setdefault: Flask's defaults already hold MAX_CONTENT_LENGTH = None (no limit).
    # /v1/* replaces it with AIOPS_OTLP_MAX_BYTES for its own requests (telemetry.ingest).
    if config is None or "MAX_CONTENT_LENGTH" not in config:
        app.config["MAX_CONTENT_LENGTH"] = app.config["AIOPS_MAX_BODY_BYTES"]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}

    telemetry.init_app(app)
    aiops.init_app(app)
    simulation.init_app(app)
    return app


def main() -> None:
    """Run the demo: simulation on, the scheduler in this process, port ``PORT``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("AIOPS_ENABLE_SIMULATION", "1")
    app = create_app()
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    with app.app_context():
        telemetry.ensure_schema()
    aiops.scheduler.start(app)
    port = int(os.environ.get("PORT", "5000"))
    print(f"AIOps demo on http://127.0.0.1:{port}/  (detection every "
          f"{app.config['AIOPS_DETECTION_INTERVAL']:g}s, "
          f"database {settings.masked_url(app.config['SQLALCHEMY_DATABASE_URI'])})")
    for warning in exposure(app.config)["warnings"]:
        print(f"  note: {warning} (fine for a demo on loopback; see README, Security)")
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
