"""The answers to an OTLP/HTTP trace request, in the request's encoding. Pure logic (no Flask)."""

from __future__ import annotations

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from telemetry.otlp.decode import JSON
from telemetry.otlp.mapping import Mapped


def encode(message: Message, content_type: str) -> bytes:
    """``message`` in the request's encoding."""
    if content_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def export_response(mapped: Mapped) -> ExportTraceServiceResponse:
    """An empty response (full success), or a partial success naming what was rejected."""
    if not mapped.rejected:
        return ExportTraceServiceResponse()
    return ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(
            rejected_spans=mapped.rejected, error_message=mapped.error_message
        )
    )


def status_body(code: int, message: str, content_type: str) -> bytes:
    """A ``google.rpc.Status`` (the OTLP/HTTP error body) in the request's encoding."""
    return encode(status_pb2.Status(code=code, message=message), content_type)
