"""gunicorn settings picked up automatically when started from this folder.

``/checkout`` calls ``/payment`` and ``/inventory`` on the same server, so each
worker needs spare threads or a checkout can wait on a call queued behind
itself. The app itself is created in each worker after the fork (no
``preload_app``): the span writer and scheduler threads belong to the worker.

``GET /metrics`` sums every worker's values and the worker process's
(``prometheus_client`` multiprocess mode, see :mod:`telemetry.metrics_dir`). The
master names the directory before the fork: ``PROMETHEUS_MULTIPROC_DIR`` if set,
else the one every process of this installation derives from the instance
folder and the database; it removes the files of processes that are gone (a
previous run's) and keeps those of live ones (the worker's).

The master migrates the database before it forks (``on_starting``), so no
request ever does; with the demo on, each worker starts the demo's external peer as it boots
(``post_worker_init``), not inside a request; the scheduled work runs in ``flask --app app aiops worker``
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
    from app import create_app
    from telemetry import metrics_dir

    app = create_app()  # no I/O: it names the database the metrics directory is derived from
    key = metrics_dir.store_key(app.instance_path, app.config["SQLALCHEMY_DATABASE_URI"])
    path = metrics_dir.prepare_master(os.environ, os.getpid(), key)
    server.log.info("metrics directory %s", path)
    _migrate(server, app)


def _migrate(server, app):
    """Bring the schema up to date once, before serving; the master keeps no connection."""
    from aiops.store.schema import ensure_schema
    from telemetry.db import db

    with app.app_context():
        server.log.info("database schema %s", ensure_schema())
        db.engine.dispose()


def child_exit(server, worker):
    """A worker exited: drop its live-gauge files (its counters stay in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """The last process out of a directory aiops chose removes it (the worker may still use it)."""
    from telemetry import metrics_dir

    metrics_dir.cleanup_master(os.environ, os.getpid())


def post_worker_init(worker):
    """With the demo on, its external peer (a process per worker: :mod:`simulation.external`)
    starts now rather than inside the worker's first payment: a process started mid-request is a
    latency spike the baselines would see."""
    if "shop" not in getattr(worker.wsgi, "blueprints", {}):
        return
    from simulation import external

    try:
        external.stub_url()
    except Exception:  # noqa: BLE001 - the first call will try again; the worker serves regardless
        worker.log.exception("the demo's gateway stub did not start")
