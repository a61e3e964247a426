"""Persistent AIOps state: baselines, incidents, their anomalies, and the cycle lease."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telemetry.db import db


def iso(ts: float | None) -> str | None:
    """Epoch seconds -> ``2026-01-20T10:30:15Z``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Baseline(db.Model):
    """EWMA of an endpoint's latency and error rate, learned from normal windows only."""

    __tablename__ = "baselines"

    service: Mapped[str] = mapped_column(String(255), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(512), primary_key=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    error_rate: Mapped[float] = mapped_column(Float, default=0.0)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    windows: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[float] = mapped_column(Float)
    # The slow latency baseline (aiops.detection.degradation) and the expected traffic, as requests
    # per request to every other endpoint (aiops.detection.traffic); NULL until first learned.
    slow_ms: Mapped[float | None] = mapped_column(Float)
    slow_windows: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    traffic_ratio: Mapped[float | None] = mapped_column(Float)
    traffic_windows: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SignalBaseline(db.Model):
    """Robust baseline of one series of log durations (see :mod:`aiops.detection.robust`), from normal
    windows only: ``("self" | "duration", service, endpoint)`` or ``("call" | "server" | "gap",
    caller service, callee service)``."""

    __tablename__ = "signal_baselines"

    signal: Mapped[str] = mapped_column(String(16), primary_key=True)
    source: Mapped[str] = mapped_column(String(255), primary_key=True)
    target: Mapped[str] = mapped_column(String(512), primary_key=True)
    center: Mapped[float] = mapped_column(Float)
    var: Mapped[float] = mapped_column(Float)
    tail: Mapped[float] = mapped_column(Float)
    far: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    windows: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[float] = mapped_column(Float)


class DetectionState(db.Model):
    """One row: where the last cycle stopped reading, and the lease that makes cycles exclusive."""

    __tablename__ = "detection_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    last_cycle_at: Mapped[float | None] = mapped_column(Float)
    lease_until: Mapped[float | None] = mapped_column(Float)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    cycles: Mapped[int] = mapped_column(Integer, default=0)
    # Data clock of the last window that had spans: a long silence before the next makes the
    # baselines stale (AIOPS_REBASELINE_AFTER).
    last_data_at: Mapped[float | None] = mapped_column(Float)
    relearn_until: Mapped[float | None] = mapped_column(Float)  # ... and relearn until then
    # Evidence of verdicts not yet significant, carried to the next windows (aiops.jobs.cycle).
    pending: Mapped[list | None] = mapped_column(JSON)


class LogTemplate(db.Model):
    """A kind of log line one service writes: a drain3 template, mined by the detection cycle.

    ``template_id`` is the miner's cluster id, unique within the service and stable across
    restarts (the miners' state is in ``log_miners``); ``logs.template_id`` names it. ``template``
    is the latest text (drain3 generalises a template as it meets more lines), bounded.
    """

    __tablename__ = "log_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(255))
    template_id: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(BigInteger)
    exception: Mapped[bool] = mapped_column(Boolean)  # the template reports an exception or a stack frame

    __table_args__ = (
        Index("ux_log_templates_service_template", "service", "template_id", unique=True),
        Index("ix_log_templates_first_seen", "first_seen"),
    )


class LogState(db.Model):
    """One row: the log memory the last cycle saved (see :mod:`aiops.logs.storage`): the log baselines
    as JSON and how far the cycles read the log store. ``version`` grows with every save, so a
    process whose memory is older reloads it."""

    __tablename__ = "log_memory"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    cursor: Mapped[int | None] = mapped_column(BigInteger)
    baselines: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[float] = mapped_column(Float)


class LogMiner(db.Model):
    """One service's template miner: its templates as compressed JSON (aiops.logs.mining.dump)."""

    __tablename__ = "log_miners"

    service: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[float] = mapped_column(Float)


class DetectionCycle(db.Model):
    """History of cycles: who ran them and what they found (proves one per interval)."""

    __tablename__ = "detection_cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[float] = mapped_column(Float, index=True)
    finished_at: Mapped[float] = mapped_column(Float)
    owner: Mapped[str] = mapped_column(String(128))
    spans: Mapped[int] = mapped_column(Integer)
    anomalies: Mapped[int] = mapped_column(Integer)
    incidents_opened: Mapped[int] = mapped_column(Integer)
    incidents_updated: Mapped[int] = mapped_column(Integer)
    incidents_resolved: Mapped[int] = mapped_column(Integer)


class CycleRequest(db.Model):
    """A cycle asked for by ``POST /aiops/analyze``; the worker that runs it writes the answer here."""

    __tablename__ = "cycle_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    requested_at: Mapped[float] = mapped_column(Float, index=True)
    answered_at: Mapped[float | None] = mapped_column(Float)
    answered_by: Mapped[str | None] = mapped_column(String(128))
    summary: Mapped[dict | None] = mapped_column(JSON)


class WorkerHeartbeat(db.Model):
    """A running ``flask aiops worker``'s (or demo scheduler's) heartbeat: its last sign of life says
    it can answer. The process itself is :class:`aiops.jobs.worker.Worker`."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[float] = mapped_column(Float)
    seen_at: Mapped[float] = mapped_column(Float)


class Incident(db.Model):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    root_service: Mapped[str] = mapped_column(String(255))
    root_endpoint: Mapped[str] = mapped_column(String(512))
    root_issue: Mapped[str] = mapped_column(Text)
    candidates: Mapped[list] = mapped_column(JSON, default=list)
    affected: Mapped[list] = mapped_column(JSON, default=list)
    trace_id: Mapped[str | None] = mapped_column(String(32))
    correlated_failures: Mapped[list] = mapped_column(JSON, default=list)
    first_detected: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)
    resolved_at: Mapped[float | None] = mapped_column(Float)
    clean_cycles: Mapped[int] = mapped_column(Integer, default=0)
    timeline: Mapped[list] = mapped_column(JSON, default=list)
    # Lifecycle (issue 5): cycles the anomaly was seen in while open (flap
    # suppression), when it was confirmed (first notified), recurrences, the
    # earlier incident this one recurs after, when the last trigger-class
    # notification was queued (rate limits), and the remediation hook's state.
    seen_cycles: Mapped[int] = mapped_column(Integer, default=0)
    confirmed_at: Mapped[float | None] = mapped_column(Float)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    related_to: Mapped[str | None] = mapped_column(String(64))
    last_notified_at: Mapped[float | None] = mapped_column(Float)
    remediation: Mapped[str | None] = mapped_column(String(16))
    remediation_at: Mapped[float | None] = mapped_column(Float)
    # The hops from the root cause to its symptoms (see aiops.rca.analysis.propagation_path).
    propagation: Mapped[list | None] = mapped_column(JSON)
    # When the current episode began: opened, reopened, or another kind of fault took over. The
    # title, root issue, kind and severity describe the anomalies since then (None: first_detected).
    episode_at: Mapped[float | None] = mapped_column(Float)
    # When a trigger last went out (paged) and as which kind: the per-pattern cooldowns
    # (aiops.incidents.cooldowns) hold a repeat of the same kind on the same root.
    paged_at: Mapped[float | None] = mapped_column(Float)
    paged_kind: Mapped[str | None] = mapped_column(String(32))

    anomalies: Mapped[list[AnomalyRecord]] = relationship(
        back_populates="incident", order_by="AnomalyRecord.id", cascade="all, delete-orphan"
    )

    @property
    def active(self) -> bool:
        return self.status != "resolved"

    def to_dict(self) -> dict:
        """The contract's incident JSON and lifecycle fields; ``aiops.incidents.reports.with_report`` adds the
        plain-language report (the model stores facts, it does not write prose)."""
        return {
            "id": self.id,
            "status": self.status,
            "severity": self.severity,
            "title": self.title,
            "root_cause": {
                "service": self.root_service,
                "endpoint": self.root_endpoint or None,  # None: the whole service (detect.WHOLE_SERVICE)
                "issue": self.root_issue,
            },
            "root_cause_candidates": self.candidates,
            "propagation_path": self.propagation or [],
            "affected_endpoints": self.affected,
            "first_detected": iso(self.first_detected),
            "last_seen": iso(self.last_seen),
            "resolved_at": iso(self.resolved_at),
            "episode_started": iso(self.first_detected if self.episode_at is None else self.episode_at),
            "trace_correlation": {
                "trace_id": self.trace_id,
                "correlated_failures": self.correlated_failures,
            },
            "anomalies": [a.to_dict() for a in self.anomalies],
            "timeline": self.timeline,
            "confirmed": self.confirmed_at is not None,
            "seen_cycles": self.seen_cycles,
            "reopen_count": self.reopen_count,
            "related_to": self.related_to,
            "remediation": self.remediation,
        }


class AnomalyRecord(db.Model):
    __tablename__ = "anomalies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    service: Mapped[str] = mapped_column(String(255))
    endpoint: Mapped[str] = mapped_column(String(512))
    type: Mapped[str] = mapped_column(String(16))
    observed: Mapped[float] = mapped_column(Float)
    baseline: Mapped[float | None] = mapped_column(Float)
    request_count: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    detected_at: Mapped[float] = mapped_column(Float)
    trace_ids: Mapped[list] = mapped_column(JSON, default=list)
    pattern: Mapped[str | None] = mapped_column(String(32))  # aiops.detection.patterns (None: unnamed)

    incident: Mapped[Incident] = relationship(back_populates="anomalies")

    def to_dict(self) -> dict:
        return {
            "service": self.service,
            "endpoint": self.endpoint or None,
            "type": self.type,
            "observed": round(self.observed, 4),
            "baseline": None if self.baseline is None else round(self.baseline, 4),
            "request_count": self.request_count,
            "message": self.message,
            "detected_at": iso(self.detected_at),
            "trace_ids": self.trace_ids,
            "pattern": self.pattern,
        }


class Notification(db.Model):
    """The outbox: one message for one channel, written in the incident change's transaction.

    A background worker delivers ``pending`` rows whose ``next_attempt_at`` has
    come (claiming each with a lease, so one process sends it), and ends them as
    ``delivered``, ``failed`` (a permanent 4xx, or out of attempts) or
    ``superseded`` (a newer message for the same incident and channel replaced
    it before it went out: the receiver only needs the latest state).
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32), index=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(16))
    dedup_key: Mapped[str] = mapped_column(String(255))
    severity: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    next_attempt_at: Mapped[float] = mapped_column(Float, index=True)
    delivered_at: Mapped[float | None] = mapped_column(Float)
    lease_until: Mapped[float | None] = mapped_column(Float)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "channel": self.channel,
            "incident_id": self.incident_id,
            "event": self.event,
            "dedup_key": self.dedup_key,
            "severity": self.severity,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": iso(self.created_at),
            "next_attempt_at": iso(self.next_attempt_at) if self.status == "pending" else None,
            "delivered_at": iso(self.delivered_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
        }


class ChannelState(db.Model):
    """Per channel, shared by every process: the circuit breaker and delivery counters."""

    __tablename__ = "notification_channels"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    open_until: Mapped[float | None] = mapped_column(Float)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)


from aiops.store import declared  # noqa: E402,F401 - its tables are registered with these
