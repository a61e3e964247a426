"""``POST /v1/traces``, ``POST /v1/logs`` and ``POST /v1/metrics``: OTLP/HTTP ingest (the Flask
edge of :mod:`telemetry.otlp`, :mod:`telemetry.otlp_logs` and :mod:`telemetry.otlp_metrics`).

The routes share one contract, below (for logs read "log records" for
"spans", ``ExportLogsServiceResponse`` with ``rejected_log_records``,
:class:`telemetry.otlp_logs.LogChecks` and ``AIOPS_OTLP_MAX_LOG_RECORDS``; for metrics "data
points", ``rejected_data_points``, :class:`telemetry.otlp_metrics.MetricChecks` and
``AIOPS_OTLP_MAX_METRIC_POINTS``); a :class:`Signal` is all that differs.

Point an OpenTelemetry SDK or Collector's ``otlphttp`` exporter here, with
protobuf or JSON, gzip or not. Status codes follow the OTLP/HTTP spec, since
exporters decide from them whether to retry:

- 200: the batch is stored. The body is an ``ExportTraceServiceResponse`` in
  the request's encoding, with ``partial_success`` (``rejected_spans`` and an
  ``error_message``) when some spans were invalid or refused (bad ids, times
  far from now, too many attributes, the product's own service name; see
  :class:`telemetry.otlp.SpanChecks`) and dropped.
- 400: the body cannot be decoded (truncated protobuf, bad JSON or gzip,
  wrong types, an empty body) or every span in it is invalid. Clients never
  retry a 400. Nothing is stored. Invalid UTF-8 is repaired, not a 400.
- 401: ``AIOPS_INGEST_TOKEN`` (else ``AIOPS_API_TOKEN``) is set and the
  request does not carry it (in a form :func:`telemetry.tokens.presented`
  accepts, as an exporter's ``authorization=Bearer <token>`` header is);
  checked before the body is read.
- 413: over ``AIOPS_OTLP_MAX_BYTES`` after decompression; the gzip stream is
  inflated chunk by chunk and abandoned at the limit, so a small "gzip bomb"
  costs at most the limit in memory (deflate, which the Python exporter
  offers, is handled the same way). Flask's ``MAX_CONTENT_LENGTH`` is
  replaced by this limit for this route, so the 413 is in OTLP's format too.
  Also over ``AIOPS_OTLP_MAX_SPANS`` or ``AIOPS_OTLP_MAX_ITEMS``, found by
  :mod:`telemetry.otlp_limits` before anything is decoded.
- 415: a content type other than ``application/x-protobuf`` or
  ``application/json``, or a content coding other than gzip or deflate.
- 503 with ``Retry-After``: the database could not store the batch, or the
  process is already decoding ``AIOPS_OTLP_INFLIGHT_BYTES``. The exporters
  retry 503 (not 429), so nothing acknowledged is ever lost.

Error bodies are a ``google.rpc.Status`` in the request's encoding, as the
spec says. When the content type is not an OTLP one there is no encoding to
answer in, so that 415 uses the project's JSON error (``{"error", "message"}``).

A batch is written synchronously in one transaction before the answer, never
through the lossy in-memory span buffer: a 200 means stored. The detection
cycle reads it by span id like any recorded request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, jsonify, request
from google.rpc import code_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from werkzeug.exceptions import RequestEntityTooLarge

from telemetry import app_settings, export, otlp, otlp_limits, otlp_logs, otlp_metrics, selfmetrics, tokens
from telemetry.db import db
from telemetry.store import insert_logs, insert_metrics, insert_spans

log = logging.getLogger(__name__)

bp = Blueprint("otlp", __name__)

CHUNK = 64 * 1024
GZIP_SLACK = 64 * 1024  # gzip may grow incompressible data a little on the wire
RETRY_AFTER = "2"
_CODINGS = {"": None, "identity": None, "gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}


def _status(http_code: int, rpc_code: int, message: str, content_type: str) -> Response:
    return Response(otlp.status_body(rpc_code, message, content_type), status=http_code,
                    content_type=content_type)


def _chunks(stream) -> Iterator[bytes]:
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            return
        yield chunk


def span_checks(settings) -> otlp.SpanChecks:
    """The live-ingest rules for this request (now, skew, size, the product's own service names)."""
    return otlp.SpanChecks(
        now=time.time(),
        max_age=settings.otlp_max_age,
        max_ahead=settings.otlp_max_ahead,
        max_duration=settings.otlp_max_duration,
        max_attributes=settings.otlp_max_attributes,
        max_events=settings.otlp_max_events,
        own_services=frozenset({settings.service_name}),
    )


def clock_checks(checks_type, settings):
    """The live-ingest rules of log records and metric points (``checks_type``, either's checks
    class): the spans' clock, attribute-count and own-service rules."""
    return checks_type(
        now=time.time(),
        max_age=settings.otlp_max_age,
        max_ahead=settings.otlp_max_ahead,
        max_attributes=settings.otlp_max_attributes,
        own_services=frozenset({settings.service_name}),
    )


def _totals() -> otlp_metrics.Cumulative:
    """This app's running totals' last points, for their rates (in this process)."""
    return current_app.extensions.setdefault("aiops_metric_totals", otlp_metrics.Cumulative())


@dataclass(frozen=True)
class Signal:
    """What one OTLP route decodes, maps, stores and answers."""

    message_type: type
    schema: otlp_limits.Schema
    max_records: Callable  # settings -> records allowed per request
    to_rows: Callable  # (message, settings) -> otlp.Mapped
    insert: Callable  # (engine, rows) -> None
    response: Callable  # Mapped -> the Export*ServiceResponse
    store: str
    metric: str = "spans"  # what the self-metrics count its records as (telemetry.selfmetrics.otlp_batch)

    def count(self, message) -> int:
        """Records in a decoded request: JSON, and a small protobuf body, are not scanned first."""
        if self.message_type is ExportLogsServiceRequest:
            return sum(len(sl.log_records) for rl in message.resource_logs for sl in rl.scope_logs)
        if self.message_type is ExportMetricsServiceRequest:
            return otlp_metrics.count_points(message)
        return sum(len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans)


TRACES = Signal(ExportTraceServiceRequest, otlp_limits.TRACES, lambda s: s.otlp_max_spans,
                lambda message, s: otlp.to_rows(message, span_checks(s)),
                lambda engine, rows: insert_spans(engine, rows),  # looked up per call (tests replace it)
                otlp.export_response, "span store")
LOGS = Signal(ExportLogsServiceRequest, otlp_limits.LOGS, lambda s: s.otlp_max_log_records,
              lambda message, s: otlp_logs.to_log_rows(message, clock_checks(otlp_logs.LogChecks, s),
                                                       s.log_body_max),
              lambda engine, rows: insert_logs(engine, rows),
              otlp_logs.export_response, "log store", "logs")
METRICS = Signal(ExportMetricsServiceRequest, otlp_limits.METRICS, lambda s: s.otlp_max_metric_points,
                 lambda message, s: otlp_metrics.to_metric_rows(
                     message, clock_checks(otlp_metrics.MetricChecks, s), _totals()),
                 lambda engine, rows: insert_metrics(engine, rows),
                 otlp_metrics.export_response, "metric store", "metric points")


def _decode(content_type: str, coding: str | None, settings, budget: otlp_limits.InflightBudget,
            signal: Signal = TRACES):
    """Read, decompress, bound and decode the body: (message, bytes reserved in ``budget``).

    The body's bytes are reserved as they arrive; then what decoding will
    build (counted by the scan for a large protobuf body, bounded by its size for a
    small one, estimated for JSON). On any
    failure the reservation is given back here; on success, by the caller.
    """
    reserved = [0]

    def reserve(amount: int) -> bool:
        if budget.take(amount):
            reserved[0] += amount
            return True
        return False

    limits = otlp_limits.Limits(signal.max_records(settings), settings.otlp_max_items)
    kind = signal.message_type
    try:
        body = otlp.read_body(_chunks(request.stream), coding=coding, limit=settings.otlp_max_bytes,
                              reserve=reserve)
        if not body:
            return otlp.parse(body, content_type, kind), reserved
        counted = None if content_type == otlp.JSON else otlp_limits.unscanned_items(len(body), limits)
        if content_type == otlp.JSON:
            expected = len(body) * otlp_limits.JSON_FACTOR
        elif counted is not None:
            expected = counted * otlp_limits.ITEM_BYTES
        else:
            expected = otlp_limits.scan_protobuf(body, limits, signal.schema) * otlp_limits.ITEM_BYTES
        if not reserve(expected):
            raise otlp.Overloaded(otlp.OVERLOADED)
        if content_type == otlp.JSON:
            hook = otlp_limits.json_object_counter(limits)
            message = otlp.parse_json(body, object_hook=hook, message_type=kind)
        else:
            message = otlp.parse(body, content_type, kind)
            if counted is None:
                return message, reserved  # the scan counted its records
        if signal.count(message) > limits.max_records:
            raise otlp_limits.too_many_records(limits.max_records, signal.schema)
        return message, reserved
    except BaseException:
        budget.give(reserved[0])
        raise


@bp.post("/v1/traces")
def export_traces():
    return _export(TRACES)


@bp.post("/v1/logs")
def export_logs():
    return _export(LOGS)


@bp.post("/v1/metrics")
def export_metrics():
    return _export(METRICS)


def _export(signal: Signal) -> Response:
    content_type = request.mimetype
    if content_type not in otlp.CONTENT_TYPES:
        response = jsonify(
            error="Unsupported Media Type",
            message=f"Content-Type must be {otlp.PROTOBUF} or {otlp.JSON}, not {content_type or 'none'!r}",
        )
        response.status_code = 415
        return response
    settings = app_settings()
    token = settings.ingest_token_required
    if token and not tokens.presented(request.headers, token):
        response = _status(401, code_pb2.UNAUTHENTICATED,
                           "this server needs 'Authorization: Bearer <AIOPS_INGEST_TOKEN>'", content_type)
        response.headers["WWW-Authenticate"] = 'Bearer realm="otlp"'
        return response
    coding = _CODINGS.get(request.headers.get("Content-Encoding", "").strip().lower(), "?")
    if coding == "?":
        return _status(415, code_pb2.INVALID_ARGUMENT,
                       f"Content-Encoding {request.headers['Content-Encoding']!r} is not supported "
                       "(use gzip, deflate or none)", content_type)

    limit = settings.otlp_max_bytes
    # Replace MAX_CONTENT_LENGTH for this request (Flask >= 3.1), before the body is touched.
    request.max_content_length = limit + GZIP_SLACK
    budget = current_app.extensions["aiops_otlp_budget"]
    try:
        message, reserved = _decode(content_type, coding, settings, budget, signal)
    except RequestEntityTooLarge:
        return _status(413, code_pb2.RESOURCE_EXHAUSTED,
                       f"body is over the limit of {limit} bytes (AIOPS_OTLP_MAX_BYTES)", content_type)
    except otlp.PayloadTooLarge as exc:
        return _status(413, code_pb2.RESOURCE_EXHAUSTED, str(exc), content_type)
    except otlp.Overloaded as exc:
        response = _status(503, code_pb2.UNAVAILABLE, str(exc), content_type)
        response.headers["Retry-After"] = RETRY_AFTER
        return response
    except otlp.OtlpError as exc:
        return _status(400, code_pb2.INVALID_ARGUMENT, str(exc), content_type)
    try:
        mapped = signal.to_rows(message, settings)
        del message  # the rows are all that is kept
        return _store(mapped, content_type, signal)
    finally:
        budget.give(reserved[0])


def _store(mapped: otlp.Mapped, content_type: str, signal: Signal) -> Response:
    if mapped.rejected and not mapped.rows:
        selfmetrics.otlp_batch(stored=0, rejected=mapped.rejected, signal=signal.metric)
        return _status(400, code_pb2.INVALID_ARGUMENT, mapped.error_message, content_type)
    try:
        signal.insert(db.engine, mapped.rows)
    except Exception:  # noqa: BLE001 - any store failure is retryable for the client
        log.exception("could not store an OTLP batch of %d %ss", len(mapped.rows), mapped.noun)
        selfmetrics.otlp_batch(stored=0, rejected=0, failed=True, signal=signal.metric)
        response = _status(503, code_pb2.UNAVAILABLE, f"the {signal.store} is unavailable; retry later",
                           content_type)
        response.headers["Retry-After"] = RETRY_AFTER
        return response
    selfmetrics.otlp_batch(stored=len(mapped.rows), rejected=mapped.rejected, signal=signal.metric)
    if signal is TRACES:
        export.forward_ingested(current_app, mapped.rows)  # AIOPS_EXPORT_INGESTED=1: a tee
    if mapped.rejected:
        log.info("OTLP batch: stored %d %ss, %s", len(mapped.rows), mapped.noun, mapped.error_message)
    return Response(otlp.encode(signal.response(mapped), content_type), status=200,
                    content_type=content_type)
