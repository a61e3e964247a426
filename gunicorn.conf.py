"""gunicorn settings picked up automatically when started from this folder.

``/checkout`` calls ``/payment`` and ``/inventory`` on the same server, so each
worker needs spare threads or a checkout can wait on a call queued behind
itself. The app itself is created in each worker after the fork (no
``preload_app``): the span writer and scheduler threads belong to the worker.
"""

import os

bind = os.environ.get("AIOPS_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
worker_class = "gthread"
threads = int(os.environ.get("AIOPS_THREADS", "8"))
timeout = 60
graceful_timeout = 10
