"""gunicorn settings picked up automatically when started from this folder.

``/checkout`` calls ``/payment`` and ``/inventory`` on the same server, so each
worker needs spare threads or a checkout can wait on a call queued behind
itself. The app itself is created in each worker after the fork (no
``preload_app``): the span writer and scheduler threads belong to the worker.

``GET /metrics`` sums every worker's values (``prometheus_client`` multiprocess
mode, see :mod:`telemetry.selfmetrics`). The hooks give this server its own
metrics directory: ``PROMETHEUS_MULTIPROC_DIR`` if set (emptied at start), else
a fresh temporary one exported to the workers and removed on exit.

The master migrates the database before it forks (``on_starting``), so no
request ever does; the scheduled work runs in ``flask --app app aiops worker``
beside this server, never in its workers.
"""

import os

from aiops.settings import Settings

_settings = Settings.from_env({"port": int(os.environ.get("PORT", "8000"))})  # gunicorn's port: 8000
bind = _settings.bind or f"127.0.0.1:{_settings.port}"
worker_class = "gthread"
threads = _settings.threads
timeout = 60
graceful_timeout = 10


def on_starting(server):
    """In the master, before any worker is forked (workers inherit the environment)."""
    from telemetry import selfmetrics

    path = selfmetrics.prepare_master(os.environ, os.getpid())
    server.log.info("metrics directory %s", path)
    _migrate(server)


def _migrate(server):
    """Bring the schema up to date once, before serving; the master keeps no connection."""
    from aiops.store.schema import ensure_schema
    from app import create_app
    from telemetry.db import db

    app = create_app()
    with app.app_context():
        server.log.info("database schema %s", ensure_schema())
        db.engine.dispose()


def child_exit(server, worker):
    """A worker exited: drop its live-gauge files (its counters stay in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    from telemetry import selfmetrics

    selfmetrics.cleanup_master(os.environ, os.getpid())
