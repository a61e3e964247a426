"""The opt-in recorder (``AIOPS_RECORDER=otel``): the official Flask instrumentation.

For users who want the full OpenTelemetry semantic conventions on their spans.
It costs more per request than :mod:`telemetry.recorder` (an SDK span object,
attributes and events per request), so it is not the default. Its spans reach
the same :class:`~telemetry.buffer.SpanBuffer` through a span processor and
become the same rows the lean recorder writes.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

from telemetry.buffer import SpanBuffer
from telemetry.columns import KIND_CLIENT
from telemetry.rows import UNMATCHED, ServiceNames, endpoint_for_route, is_error

log = logging.getLogger(__name__)

ENDPOINT_ATTRIBUTE = "aiops.endpoint"  # the operation a CLIENT span calls


def _exception(span: ReadableSpan) -> tuple[str | None, str | None, str | None]:
    for event in span.events:
        if event.name == "exception":
            attrs = event.attributes or {}
            return (
                attrs.get("exception.type"),
                attrs.get("exception.message"),
                attrs.get("exception.stacktrace"),
            )
    return None, None, None


def span_to_row(span: ReadableSpan, names: ServiceNames) -> tuple:
    """Map an SDK span to the row tuple the lean recorder writes for the same request."""
    attrs = span.attributes or {}
    ctx = span.get_span_context()
    kind = span.kind.value + 1  # OTel Python's SpanKind starts at INTERNAL=0
    code = attrs.get("http.response.status_code", attrs.get("http.status_code"))
    code = int(code) if code is not None else None
    exc_type, exc_msg, exc_stack = _exception(span)
    if kind == KIND_CLIENT:
        service = names.own
        endpoint = attrs.get(ENDPOINT_ATTRIBUTE) or span.name
        peer = attrs.get("peer.service") or names.own
    else:
        route = attrs.get("http.route")
        service = names.for_route(route)
        endpoint = endpoint_for_route(route) if route is not None else UNMATCHED
        peer = None
    errored = is_error(code, exc_type is not None) or span.status.status_code == StatusCode.ERROR
    return (
        format(ctx.trace_id, "032x"),
        format(ctx.span_id, "016x"),
        format(span.parent.span_id, "016x") if span.parent else None,
        service,
        endpoint,
        kind,
        attrs.get("http.request.method", attrs.get("http.method")),
        code,
        errored,
        span.start_time / 1e9,
        (span.end_time - span.start_time) / 1e6,
        peer,
        exc_type,
        exc_msg,
        exc_stack,
        None,  # the request's own attributes: the route and method are columns already
    )


class BufferSpanProcessor(SpanProcessor):
    """Hands each finished span to the span buffer as a row tuple."""

    def __init__(self, buffer: SpanBuffer, names: ServiceNames):
        self.buffer = buffer
        self.names = names

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self.buffer.add(span_to_row(span, self.names))
        except Exception:  # noqa: BLE001 - recording never fails a request
            log.exception("could not record span")


class OtelRecorder:
    """Wires the Flask instrumentation to the span buffer; same API as the lean recorder."""

    name = "otel"

    def __init__(self, app, buffer: SpanBuffer, names: ServiceNames):
        self.own_service = names.own
        self.provider = TracerProvider(resource=Resource.create({"service.name": names.own}))
        self.provider.add_span_processor(BufferSpanProcessor(buffer, names))
        self.tracer = self.provider.get_tracer("aiops.demo")
        FlaskInstrumentor().instrument_app(app, tracer_provider=self.provider)

    @staticmethod
    def note_route(environ, route: str | None) -> None:
        """The instrumentation records ``http.route`` itself."""

    @staticmethod
    def record_exception(environ, exc: BaseException) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR)

    @contextmanager
    def client_span(self, endpoint: str, method: str, service: str | None = None):
        result: dict = {"status_code": None}
        with self.tracer.start_as_current_span(
            f"{method} {endpoint}",
            kind=SpanKind.CLIENT,
            attributes={
                ENDPOINT_ATTRIBUTE: endpoint,
                "peer.service": service or self.own_service,
                "http.request.method": method,
            },
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            yield result
            if result["status_code"] is not None:
                span.set_attribute("http.response.status_code", result["status_code"])
