"""gunicorn settings picked up automatically when started from this folder.

``/checkout`` calls ``/payment`` and ``/inventory`` on the same server, so each
worker needs spare threads or a checkout can wait on a call queued behind
itself. The app itself is created in each worker after the fork (no
``preload_app``): the span writer and scheduler threads belong to the worker.

``GET /metrics`` sums every worker's values (``prometheus_client`` multiprocess
mode, see :mod:`telemetry.selfmetrics`). The hooks give this server its own
metrics directory: ``PROMETHEUS_MULTIPROC_DIR`` if set (emptied at start), else
a fresh temporary one exported to the workers and removed on exit.
"""

import os

bind = os.environ.get("AIOPS_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
worker_class = "gthread"
threads = int(os.environ.get("AIOPS_THREADS", "16"))
timeout = 60
graceful_timeout = 10


def on_starting(server):
    """In the master, before any worker is forked (workers inherit the environment)."""
    from telemetry import selfmetrics

    path = selfmetrics.prepare_master(os.environ, os.getpid())
    server.log.info("metrics directory %s", path)


def child_exit(server, worker):
    """A worker exited: drop its live-gauge files (its counters stay in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    from telemetry import selfmetrics

    selfmetrics.cleanup_master(os.environ, os.getpid())
