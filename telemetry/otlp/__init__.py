"""OTLP/HTTP requests -> rows: what ingest and replay use. Pure logic: bytes in, tuples out (no Flask).

An OTLP request goes through, in order:

- :mod:`~telemetry.otlp.body`: the body read, decompressed and bounded as it streams;
- :mod:`telemetry.otlp_limits`: what decoding it would cost, counted on the wire before decoding
  (a body up to 256 KB is bounded by its size, and its records counted once decoded);
- :mod:`~telemetry.otlp.decode`: protobuf or OTLP/JSON to the official messages, bad strings
  repaired (:mod:`~telemetry.otlp.strings`);
- :mod:`~telemetry.otlp.spans` (traces), :mod:`telemetry.otlp_logs` (logs) or
  :mod:`telemetry.otlp_metrics` (metrics): the messages to rows,
  each record that cannot be stored rejected alone (what both share: :mod:`~telemetry.otlp.mapping`);
- :mod:`~telemetry.otlp.responses`: the answer, a partial success or a ``google.rpc.Status``.

The errors (:mod:`~telemetry.otlp.errors`) say which HTTP status a request gets. This module is the
surface the rest of the product uses; the modules beside it are its parts.
"""

from telemetry.otlp.body import read_body
from telemetry.otlp.decode import (
    CONTENT_TYPES,
    JSON,
    PROTOBUF,
    json_kind,
    load_json,
    message_from_json,
    parse,
    parse_json,
    parse_json_any,
    parse_protobuf,
    to_json_dict,
)
from telemetry.otlp.errors import OVERLOADED, OtlpError, Overloaded, PayloadTooLarge
from telemetry.otlp.mapping import Mapped
from telemetry.otlp.responses import encode, export_response, status_body
from telemetry.otlp.spans import SpanChecks, to_rows

__all__ = [
    "CONTENT_TYPES",
    "JSON",
    "OVERLOADED",
    "PROTOBUF",
    "Mapped",
    "OtlpError",
    "Overloaded",
    "PayloadTooLarge",
    "SpanChecks",
    "encode",
    "export_response",
    "json_kind",
    "load_json",
    "message_from_json",
    "parse",
    "parse_json",
    "parse_json_any",
    "parse_protobuf",
    "read_body",
    "status_body",
    "to_json_dict",
    "to_rows",
]
