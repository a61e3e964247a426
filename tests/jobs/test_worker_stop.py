"""Stopping a worker (SIGTERM of ``flask aiops worker``) wakes its on-demand listener at once."""

from __future__ import annotations

from aiops.jobs import doorbell, worker
from telemetry.db import db


def test_stop_rings_the_listener_awake_and_it_ends(app_factory):
    app = app_factory(AIOPS_SCHEDULER=False)
    with app.app_context():
        bell = doorbell.Listener(db.engine, doorbell.ANALYZE)  # hears what the worker's listener hears
    try:
        running = worker.start(app)
        running.stop()
        # Without the ring the listener would sleep out its heartbeat (5 s) before seeing ``stopping``.
        # (A PostgreSQL NOTIFY reaches a listening connection a moment after the commit: wait for it.)
        assert bell.wait(5.0), "stop() did not ring the listener's doorbell"
        assert not running._listener.is_alive()
    finally:
        bell.close()
