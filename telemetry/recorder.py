"""The lean request recorder: a WSGI middleware on the OpenTelemetry API.

Use it to record every request as a span at a cost low enough to leave on.
It reads the W3C ``traceparent`` header with OpenTelemetry's trace-context
propagator, makes the request's span context current (so outgoing calls that
``inject`` carry the trace on), and when the response is ready hands one plain
tuple to the :class:`~telemetry.buffer.SpanBuffer`. No SDK span objects, no
processors, no locks on the request path. Flask hooks fill in what only Flask
knows: the matched route and an unhandled exception.
"""

from __future__ import annotations

import logging
import random
import time
from contextlib import contextmanager

from opentelemetry import context, trace
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from telemetry.buffer import SpanBuffer
from telemetry.columns import KIND_CLIENT, KIND_SERVER
from telemetry.rows import (
    UNMATCHED,
    ServiceNames,
    endpoint_for_route,
    exception_fields,
    is_error,
)

log = logging.getLogger(__name__)

ENVIRON_KEY = "aiops.span"
_PROPAGATOR = TraceContextTextMapPropagator()
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def _new_span_context(trace_id: int | None = None) -> SpanContext:
    return SpanContext(
        trace_id=trace_id or random.getrandbits(128),
        span_id=random.getrandbits(64),
        is_remote=False,
        trace_flags=_SAMPLED,
    )


class LeanRecorder:
    """WSGI middleware that records each request as a SERVER span row."""

    name = "lean"

    def __init__(self, wsgi_app, buffer: SpanBuffer, names: ServiceNames):
        self.wsgi_app = wsgi_app
        self.buffer = buffer
        self.names = names
        self.own_service = names.own

    def __call__(self, environ, start_response):
        parent_ctx = _PROPAGATOR.extract(environ, getter=wsgi_getter)
        parent = trace.get_current_span(parent_ctx).get_span_context()
        span_ctx = _new_span_context(parent.trace_id if parent.is_valid else None)
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(span_ctx), parent_ctx))
        info: dict = {}
        environ[ENVIRON_KEY] = info
        status: list = [None]

        def _start_response(status_line, headers, exc_info=None):
            status[0] = status_line
            return start_response(status_line, headers, exc_info)

        started = time.time()
        t0 = time.perf_counter()
        try:
            return self.wsgi_app(environ, _start_response)
        except BaseException as exc:  # the WSGI server turns it into a 500
            info.setdefault("exception", exception_fields(exc))
            status[0] = status[0] or "500"
            raise
        finally:
            duration_ms = (time.perf_counter() - t0) * 1000.0
            context.detach(token)
            try:
                code = int(status[0].split(" ", 1)[0]) if status[0] else None
                route = info.get("route")
                exc_type, exc_msg, exc_stack = info.get("exception") or (None, None, None)
                self.buffer.add(
                    (
                        format(span_ctx.trace_id, "032x"),
                        format(span_ctx.span_id, "016x"),
                        format(parent.span_id, "016x") if parent.is_valid else None,
                        self.names.for_route(route),
                        endpoint_for_route(route) if "route" in info else UNMATCHED,
                        KIND_SERVER,
                        environ.get("REQUEST_METHOD"),
                        code,
                        is_error(code, exc_type is not None),
                        started,
                        duration_ms,
                        None,
                        exc_type,
                        exc_msg,
                        exc_stack,
                        None,
                    )
                )
            except Exception:  # noqa: BLE001 - recording never fails a request
                log.exception("could not record request span")

    # -- the API the demo services use -------------------------------------

    @staticmethod
    def note_route(environ, route: str | None) -> None:
        info = environ.get(ENVIRON_KEY)
        if info is not None:
            info["route"] = route

    @staticmethod
    def record_exception(environ, exc: BaseException) -> None:
        info = environ.get(ENVIRON_KEY)
        if info is not None:
            info["exception"] = exception_fields(exc)

    @contextmanager
    def client_span(self, endpoint: str, method: str, service: str | None = None):
        """Record a call to ``endpoint`` of ``service`` (default: this app's own) as a
        CLIENT span; yields a dict for the response status."""
        peer = service or self.own_service
        parent = trace.get_current_span().get_span_context()
        span_ctx = _new_span_context(parent.trace_id if parent.is_valid else None)
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(span_ctx)))
        result: dict = {"status_code": None, "exception": None}
        started = time.time()
        t0 = time.perf_counter()
        try:
            yield result
        except BaseException as exc:
            result["exception"] = exception_fields(exc)
            raise
        finally:
            duration_ms = (time.perf_counter() - t0) * 1000.0
            context.detach(token)
            code = result["status_code"]
            exc_type, exc_msg, exc_stack = result["exception"] or (None, None, None)
            self.buffer.add(
                (
                    format(span_ctx.trace_id, "032x"),
                    format(span_ctx.span_id, "016x"),
                    format(parent.span_id, "016x") if parent.is_valid else None,
                    self.own_service,
                    endpoint,
                    KIND_CLIENT,
                    method,
                    code,
                    is_error(code, exc_type is not None),
                    started,
                    duration_ms,
                    peer,
                    exc_type,
                    exc_msg,
                    exc_stack,
                    None,
                )
            )
