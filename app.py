"""The AIOps service: ``create_app`` factory, and ``python app.py`` for the demo.

``create_app`` only wires things together: it opens no connection and starts
no thread, so gunicorn can call it in every worker after the fork. Web
workers only serve: the scheduled work runs in ``flask --app app aiops worker``
(:mod:`aiops.jobs.worker`), and the schema is migrated before serving
(``flask --app app aiops migrate``, gunicorn.conf.py, the worker). ``python
app.py`` is the whole demo in one process: it migrates, then runs the worker in
a thread beside the development server.
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
from aiops.jobs import worker
from aiops.settings import Settings
from aiops.store.schema import ensure_schema
from aiops.web.health import exposure


def create_app(config: dict | None = None) -> Flask:
    """Build the app; ``config`` overrides the environment (tests use it)."""
    app = Flask(__name__, instance_relative_config=True)
    # A test configuration replaces the environment (as in Flask's tutorial): no test reads the shell.
    overrides = dict(config or {})
    conf = Settings.load(os.environ if config is None else {}, overrides)
    settings.install(app, conf)
    app.config.update({k: v for k, v in overrides.items() if not settings.is_setting(k)})
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        db_file = Path(app.instance_path) / "aiops.db"
        app.config["SQLALCHEMY_DATABASE_URI"] = conf.database_url or f"sqlite:///{db_file}"
    # Assigned, not setdefault: Flask's defaults already hold MAX_CONTENT_LENGTH = None (no limit).
    # /v1/* replaces it with AIOPS_OTLP_MAX_BYTES for its own requests (telemetry.ingest).
    if "MAX_CONTENT_LENGTH" not in overrides:
        app.config["MAX_CONTENT_LENGTH"] = conf.max_body_bytes
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}

    telemetry.init_app(app, conf, aiops.service_names(conf.service_name))
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
        ensure_schema()
    conf = settings.settings_of(app)
    worker.start(app)  # the demo is one process: it is its own worker
    print(f"AIOps demo on http://{conf.host}:{conf.port}/  (detection every {conf.detection_interval:g}s, "
          f"database {settings.masked_url(app.config['SQLALCHEMY_DATABASE_URI'])})")
    for warning in exposure(conf)["warnings"]:
        print(f"  note: {warning} (fine for a demo on loopback; see docs/security.md)")
    app.run(host=conf.host, port=conf.port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
