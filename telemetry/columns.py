"""The span and log rows as plain values: what the ``kind`` column holds, and the column order of
the tuples that recorders, ingest and replay hand to the store.

Pure (no SQLAlchemy), so detection and RCA can read spans without the database layer;
:mod:`telemetry.models` maps the same columns to tables.
"""

from __future__ import annotations

# OTLP SpanKind values, used for the ``kind`` column.
KIND_UNSPECIFIED, KIND_INTERNAL, KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = range(6)

# Column order of the plain tuples recorders hand to the span buffer.
SPAN_FIELDS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "service",
    "endpoint",
    "kind",
    "method",
    "status_code",
    "error",
    "start_time",
    "duration_ms",
    "peer",
    "exception_type",
    "exception_message",
    "exception_stack",
    # The span's and its resource's other attributes as compact JSON, or None
    # (:mod:`telemetry.attributes`): last, so a reader of the named columns leaves it out.
    "attributes",
)
# What the benches' synthetic rows fill (they carry no attributes).
SPAN_COLUMNS = SPAN_FIELDS[:-1]
# Bounds of the exception columns (telemetry.models.Span; PostgreSQL enforces the type's length):
# every writer cuts to them, so no row fails its batch for its size.
MAX_EXC_TYPE = 255
MAX_TEXT = 32 * 1024  # exception message and stack: enough to read, bounded to store


# Column order of the log tuples the OTLP mapping and the logging handler produce.
LOG_FIELDS = (
    "time",
    "service",
    "severity_number",
    "severity_text",
    "body",
    "trace_id",
    "span_id",
    "attributes",
)

# Column order of the metric tuples the OTLP mapping produces (telemetry.otlp_metrics).
METRIC_FIELDS = ("time", "service", "pod", "host", "name", "attributes", "value")
