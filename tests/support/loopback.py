"""The app behind a real threaded HTTP server on loopback, and the spans it recorded.

For tests where requests must really cross a socket: the demo's ``/checkout``
calls payment and inventory over HTTP, and both recorders see real requests.
"""

from __future__ import annotations

import threading

from sqlalchemy import select
from werkzeug.serving import make_server

from telemetry.db import db
from telemetry.models import Span


class LoopbackServer:
    """A real threaded HTTP server on 127.0.0.1, so /checkout's outgoing calls really happen."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def stored(app, **where) -> list[Span]:
    """Flush the app's buffer and read the span rows back, oldest first."""
    with app.app_context():
        app.extensions["aiops_buffer"].flush()
        stmt = select(Span).filter_by(**where).order_by(Span.id)
        rows = list(db.session.scalars(stmt))
        db.session.expunge_all()
        return rows
