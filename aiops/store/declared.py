"""What users declare through the API and config files, and what it raises: SLOs, silences,
trace-query rules and their alerts. Registered with the rest of the models (:mod:`aiops.store.models`)."""

from __future__ import annotations

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from telemetry.db import db


class Slo(db.Model):
    """A service level objective (see :mod:`aiops.slos`) and its last evaluation.

    ``endpoint`` is ``""`` for the whole service. ``burn_rates``, ``status`` and
    ``budget_remaining`` are what the last detection cycle (or the last edit) computed;
    ``daily`` caches the good/total counts of completed UTC days, so the 30-day history
    outlives the span retention and costs one query a day.
    """

    __tablename__ = "slos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    service: Mapped[str] = mapped_column(String(255))
    endpoint: Mapped[str] = mapped_column(String(512), default="")
    sli: Mapped[str] = mapped_column(String(16))
    objective: Mapped[float] = mapped_column(Float)
    threshold_ms: Mapped[float | None] = mapped_column(Float)
    min_rps: Mapped[float | None] = mapped_column(Float)
    window_days: Mapped[int] = mapped_column(Integer, default=30)
    source: Mapped[str] = mapped_column(String(16), default="api")  # api | config
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    evaluated_at: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str | None] = mapped_column(String(16))
    burn_rates: Mapped[dict | None] = mapped_column(JSON)
    budget_remaining: Mapped[float | None] = mapped_column(Float)
    daily: Mapped[dict | None] = mapped_column(JSON)
class Silence(db.Model):
    """A silence (Alertmanager's model): incidents whose labels all its ``matchers`` match send no
    notification from ``starts_at`` until ``ends_at`` (see :mod:`aiops.silences`). Expiring one
    early moves ``ends_at`` to then; its state always follows from the clock."""

    __tablename__ = "silences"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID, as Alertmanager's
    matchers: Mapped[list] = mapped_column(JSON)  # [{"name", "value", "regex"}], checked when created
    starts_at: Mapped[float] = mapped_column(Float)
    ends_at: Mapped[float] = mapped_column(Float, index=True)
    created_by: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class Rule(db.Model):
    """A trace-query rule (see :mod:`aiops.rules`): a TraceQL query, the window it looks back over,
    how its matches are aggregated and the threshold that fires it; and its last evaluation.

    ``lease_until``/``lease_owner`` keep an evaluation to one worker process (a rule is claimed once
    per interval, like a detection cycle); ``last_notified_at`` is when its last alert may go out
    (the outbox's per-severity rate limit).
    """

    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    query: Mapped[str] = mapped_column(Text)
    window_s: Mapped[float] = mapped_column(Float)
    aggregation: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[float] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(16))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="api")  # api | config
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    evaluated_at: Mapped[float | None] = mapped_column(Float)
    lease_until: Mapped[float | None] = mapped_column(Float)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str | None] = mapped_column(String(16))  # ok | firing | failed
    value: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_notified_at: Mapped[float | None] = mapped_column(Float)


class RuleAlert(db.Model):
    """One alert of a trace-query rule: the set of traces it fired on (``fingerprint``: a hash of
    their sorted ids), when first and last seen, and what the notification says. The rule's name is
    kept, so an alert outlives its rule."""

    __tablename__ = "rule_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(255))
    anomaly_type: Mapped[str] = mapped_column(String(32), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    span_name: Mapped[str | None] = mapped_column(String(512))
    service: Mapped[str | None] = mapped_column(String(255))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    error_message: Mapped[str | None] = mapped_column(Text)
    aggregation: Mapped[str] = mapped_column(String(16))
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    affected_traces: Mapped[int] = mapped_column(Integer)
    total_traces: Mapped[int] = mapped_column(Integer)
    trace_ids: Mapped[list] = mapped_column(JSON)  # the first of the matched traces, newest first
    severity: Mapped[str] = mapped_column(String(16))
    notification: Mapped[str] = mapped_column(String(16))  # queued | silenced | off
    first_seen: Mapped[float] = mapped_column(Float, index=True)
    last_seen: Mapped[float] = mapped_column(Float)
    seen: Mapped[int] = mapped_column(Integer, default=1)  # evaluations that found this same set

    __table_args__ = (Index("ix_rule_alerts_rule_first_seen", "rule_id", "first_seen"),)
