"""The product's own Python ``logging`` records, stored with the trace and span of the request
that emitted them, the way OpenTelemetry's logging bridge does it.

It *is* the bridge: ``opentelemetry-instrumentation-logging``'s
``LoggingHandler`` (the SDK's own is deprecated for it) on the root logger turns a
``logging.LogRecord`` into an OpenTelemetry log record, taking the trace and
span ids from the current OpenTelemetry context, and the exception and code
location as attributes. Both recorders make the request's span current in
that context (the lean one with the OpenTelemetry API alone, the ``otel`` one
through the SDK tracer), so the same handler serves both. Its processor
(:class:`BufferLogProcessor`) turns the record into a row of
``telemetry.columns.LOG_FIELDS`` and queues it in a
:class:`~telemetry.buffer.SpanBuffer` of its own, whose thread writes rows in
batches: a log call costs the request a few microseconds and never a query,
and a store failure is counted by the buffer, never raised.

Only records emitted inside a request of an app that installed a buffer, with
a valid span current, are kept: the worker's and the writer thread's own logs
have no request to belong to (and storing the writer's failures through the
writer would loop). One handler serves every app of the process (tests build
many): it finds the app, and so its buffer, through Flask's ``current_app``.
"""

from __future__ import annotations

import json
import logging
import threading

from flask import current_app, has_request_context, request
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor

from telemetry.otlp.mapping import clean
from telemetry.otlp_logs import BODY_MAX, KEPT_ATTRIBUTES, severity_name

log = logging.getLogger(__name__)

EXTENSION = "aiops_log_buffer"  # app.extensions: (SpanBuffer, ServiceNames, body limit)
_KEPT = frozenset(KEPT_ATTRIBUTES)
_MAX_ATTR_VALUE = 1024
_installed: list[LoggingHandler] = []
_lock = threading.Lock()


def log_row(record, service: str, body_max: int = BODY_MAX) -> tuple | None:
    """An SDK log record as a ``LOG_FIELDS`` row; None without a valid trace context."""
    if not record.trace_id or not record.span_id:
        return None
    number = int(record.severity_number.value) if record.severity_number is not None else 0
    body = record.body if record.body is None or isinstance(record.body, str) else str(record.body)
    kept = {}
    for key, value in (record.attributes or {}).items():
        if key in _KEPT and value is not None:
            kept[key] = value[:_MAX_ATTR_VALUE] if isinstance(value, str) else value
    return (
        (record.timestamp or record.observed_timestamp) / 1e9,
        service,
        number,
        record.severity_text or severity_name(number),
        clean(body, body_max),  # NUL and lone surrogates would fail the buffered batch
        format(record.trace_id, "032x"),
        format(record.span_id, "016x"),
        json.dumps(kept, sort_keys=True, default=str) if kept else None,
    )


class BufferLogProcessor(LogRecordProcessor):
    """Queues each record emitted inside one of our requests in that app's log buffer."""

    def on_emit(self, log_record) -> None:
        try:
            if not has_request_context():
                return
            installed = current_app.extensions.get(EXTENSION)
            if installed is None:
                return
            buffer, names, body_max = installed
            rule = request.url_rule
            row = log_row(log_record.log_record, names.for_route(rule.rule if rule is not None else None),
                          body_max)
            if row is not None:
                buffer.add(row)
        except Exception:  # noqa: BLE001 - a log call never fails the request that made it
            pass

    emit = on_emit  # older SDKs call it emit

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def install(level: int = logging.INFO) -> LoggingHandler:
    """Put the bridge on the root logger, once per process (later calls return the same handler)."""
    with _lock:
        if not _installed:
            provider = LoggerProvider()
            provider.add_log_record_processor(BufferLogProcessor())
            handler = LoggingHandler(level=level, logger_provider=provider, log_code_attributes=True)
            logging.getLogger().addHandler(handler)
            _installed.append(handler)
        return _installed[0]
