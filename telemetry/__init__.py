"""Recording requests as spans and storing them: the recorders, the span store, OTLP ingest and replay.

The bottom layer: telemetry never imports ``aiops`` or ``simulation`` (import-linter,
``pyproject.toml``); settings reach it as values (``init_app``'s ``settings``). ``init_app`` wires
the database, the span buffer and the configured recorder (``lean`` by default, ``otel`` on
request) into the app, the bridge that stores the app's own log records with their request's trace
(:mod:`telemetry.log_bridge`), and ``GET /metrics`` (the product's own Prometheus metrics,
:mod:`telemetry.selfmetrics`). It imports Flask, the database and the recorders only when it runs,
so the pure modules (:mod:`telemetry.columns`, :mod:`telemetry.rows`) import without them. Nothing
here connects to the database or starts a thread until a request or command needs it.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the modules behind init_app are imported when it runs: importing telemetry is cheap
    from flask import Flask, Response

    from telemetry.buffer import SpanBuffer
    from telemetry.rows import ServiceNames

log = logging.getLogger(__name__)


class _Nothing:
    """The recorder when ``AIOPS_RECORD_REQUESTS=0``: same API, records nothing."""

    name = "off"

    @staticmethod
    def note_route(environ, route):
        pass

    @staticmethod
    def record_exception(environ, exc):
        pass

    def client_span(self, endpoint, method, service=None):
        return nullcontext({"status_code": None, "exception": None})


SETTINGS_EXTENSION = "settings"  # app.extensions key of the app's settings object (installed by create_app)


def app_settings(app: Flask | None = None):
    """The settings object the app was built with (its type lives with the product, not here:
    telemetry reads the values it is handed)."""
    from flask import current_app

    return (app or current_app).extensions[SETTINGS_EXTENSION]


def init_app(app: Flask, settings, names: ServiceNames) -> None:
    """Wire recording and ingest; ``names`` says which routes are the app's own (stored apart)."""
    from telemetry import export, log_bridge, selfmetrics
    from telemetry.buffer import SpanBuffer
    from telemetry.db import configure_engine, db
    from telemetry.otlp_limits import InflightBudget
    from telemetry.store import insert_logs, insert_spans

    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
        engine = db.engine
    # Every process of this installation (web workers, the worker, the demo) counts into one place.
    selfmetrics.share_with(app.instance_path, app.config["SQLALCHEMY_DATABASE_URI"])

    export.init_app(app, settings)
    exporter = export.exporter_of(app)

    def write_spans(rows):
        insert_spans(engine, rows)
        if exporter is not None:  # stored first: the receiver gets what we stored
            exporter.submit(rows)

    buffer = SpanBuffer(
        write_spans,
        flush_interval=settings.flush_interval,
        max_size=settings.buffer_max,
        on_flush=selfmetrics.buffer_flushed,
    )
    recorder = _recorder(app, settings, buffer, names)
    app.extensions["aiops_buffer"] = buffer
    app.extensions["aiops_service_names"] = names  # the product's own work is its routes' (work_spans)
    if settings.record_requests:
        # The request's own log records, with its trace and span ids (telemetry.log_bridge).
        log_buffer = SpanBuffer(lambda rows: insert_logs(engine, rows),
                                flush_interval=settings.flush_interval, max_size=settings.buffer_max)
        app.extensions[log_bridge.EXTENSION] = (log_buffer, names, settings.log_body_max)
        log_bridge.install()
    inflight = settings.otlp_inflight_bytes
    if inflight < settings.otlp_max_bytes:
        raise ValueError("AIOPS_OTLP_INFLIGHT_BYTES must be at least AIOPS_OTLP_MAX_BYTES "
                         "(or no request of the largest allowed size could ever be decoded)")
    app.extensions["aiops_otlp_budget"] = InflightBudget(inflight)
    app.extensions["aiops_recorder"] = recorder

    from telemetry.ingest import bp as otlp_bp

    app.register_blueprint(otlp_bp)
    app.add_url_rule("/metrics", "prometheus_metrics", _prometheus_metrics)
    _note_requests(app, recorder)


def _recorder(app: Flask, settings, buffer, names: ServiceNames):
    """The recorder ``AIOPS_RECORDER`` names (the lean one wraps the WSGI app), or none."""
    if not settings.record_requests:
        return _Nothing()
    if settings.recorder == "otel":
        from telemetry.otel_recorder import OtelRecorder

        return OtelRecorder(app, buffer, names)
    from telemetry.recorder import LeanRecorder

    recorder = LeanRecorder(app.wsgi_app, buffer, names)
    app.wsgi_app = recorder
    return recorder


def _note_requests(app: Flask, recorder) -> None:
    """Tell the recorder each request's route, and (lean) the exception that ended it."""
    from flask import request

    @app.before_request
    def _note_route():
        rule = request.url_rule
        recorder.note_route(request.environ, rule.rule if rule is not None else None)

    if recorder.name == "lean":  # the otel instrumentation records exceptions itself

        @app.teardown_request
        def _note_exception(exc):
            if exc is not None:
                recorder.record_exception(request.environ, exc)


def _prometheus_metrics() -> Response:
    """``GET /metrics``: every process's counters, whichever worker answers, and the store's gauges."""
    from flask import Response, current_app, request

    from telemetry import selfmetrics

    body, content_type = selfmetrics.render(request.headers.get("Accept"),
                                            current_app.extensions.get(selfmetrics.COLLECTORS))
    return Response(body, content_type=content_type)


def active_recorder():
    from flask import current_app

    return current_app.extensions["aiops_recorder"]


def span_buffer() -> SpanBuffer:
    from flask import current_app

    return current_app.extensions["aiops_buffer"]


def record_exception(exc: BaseException) -> None:
    """Attach a handled exception (a dependency timeout, say) to the current request's span."""
    from flask import request

    active_recorder().record_exception(request.environ, exc)
