"""The span table: one row per finished span, from any recorder or ingest path.

``id`` grows in commit order, so a detection cycle reads "what arrived since
the last cycle" as an index range scan on the primary key: its cost follows
the new spans, not the history. The other indexes serve trace lookups (RCA),
time-bounded dashboards and retention, and one endpoint's series (the charts).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from telemetry.columns import KIND_SERVER, SPAN_FIELDS
from telemetry.db import db


class Span(db.Model):
    __tablename__ = "spans"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16))
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    service: Mapped[str] = mapped_column(String(255))
    endpoint: Mapped[str] = mapped_column(String(512))
    kind: Mapped[int] = mapped_column(SmallInteger, default=KIND_SERVER)
    method: Mapped[str | None] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[bool] = mapped_column(Boolean, default=False)
    # Seconds since the epoch (UTC); a double keeps microseconds.
    start_time: Mapped[float] = mapped_column(Float)
    duration_ms: Mapped[float] = mapped_column(Float)
    # For CLIENT spans: the endpoint called ("payment"), so RCA can blame a
    # callee whose own span never arrived (it hung, or it is not instrumented).
    peer: Mapped[str | None] = mapped_column(String(512))
    exception_type: Mapped[str | None] = mapped_column(String(255))
    exception_message: Mapped[str | None] = mapped_column(Text)
    exception_stack: Mapped[str | None] = mapped_column(Text)
    # The span's other attributes and its resource's, compact JSON (telemetry.attributes); both
    # stores filter on the text as it is (telemetry.span_attrs.attribute_filter).
    attributes: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # Trace lookups (RCA, pages) use its trace_id prefix; unique, so a span sent twice
        # (a client retrying a batch we stored, or a collector repeating it) is stored once.
        Index("ux_spans_trace_span", "trace_id", "span_id", unique=True),
        Index("ix_spans_start_time", "start_time"),
        # One endpoint's spans over time (the charts, telemetry.series): covering, so a 7-day series
        # is an index scan of that endpoint's entries, never a read of the table's rows.
        Index("ix_spans_endpoint_time", "service", "endpoint", "start_time", "kind", "duration_ms", "error"),
    )

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in ("id", *SPAN_FIELDS)}


class LogRecord(db.Model):
    """One log record, from OTLP ingest or the product's own logging handler.

    ``id`` grows in commit order like the spans' (a reader takes "what arrived
    since" as a key range). ``template_id`` is filled later by the template
    miner; ``attributes`` holds a small JSON object of the keys that matter.
    """

    __tablename__ = "logs"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    time: Mapped[float] = mapped_column(Float)  # seconds since the epoch (UTC)
    service: Mapped[str] = mapped_column(String(255))
    severity_number: Mapped[int] = mapped_column(SmallInteger, default=0)
    severity_text: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str | None] = mapped_column(Text)
    trace_id: Mapped[str | None] = mapped_column(String(32))
    span_id: Mapped[str | None] = mapped_column(String(16))
    attributes: Mapped[str | None] = mapped_column(Text)
    template_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_logs_time", "time"),
        Index("ix_logs_service_time", "service", "time"),
        Index("ix_logs_trace_id", "trace_id"),
        Index("ix_logs_template_id", "template_id"),
    )


class MetricPoint(db.Model):
    """One value of one numeric series, from OTLP metrics ingest (``telemetry.otlp_metrics``).

    A series is (service, pod, host, name, attributes); aggregate points arrive reduced to numeric
    series (``<name>.rate``, ``<name>.p95``...). The (service, name, time) index serves RCA's
    per-service reads and the read API; the time index, retention.
    """

    __tablename__ = "metric_points"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    time: Mapped[float] = mapped_column(Float)  # seconds since the epoch (UTC)
    service: Mapped[str] = mapped_column(String(255))
    pod: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    attributes: Mapped[str | None] = mapped_column(Text)  # the point's attributes, sorted JSON
    value: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_metric_points_service_name_time", "service", "name", "time"),
        Index("ix_metric_points_time", "time"),
    )
