"""Persistent AIOps state: baselines, incidents, their anomalies, and the cycle lease."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text
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


class SelfTimeBaseline(db.Model):
    """EWMA of an endpoint's log self time (typical value and spread), from normal windows only."""

    __tablename__ = "self_time_baselines"

    service: Mapped[str] = mapped_column(String(255), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(512), primary_key=True)
    mean_log: Mapped[float] = mapped_column(Float)
    var_log: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    windows: Mapped[int] = mapped_column(Integer, default=0)
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

    anomalies: Mapped[list[AnomalyRecord]] = relationship(
        back_populates="incident", order_by="AnomalyRecord.id", cascade="all, delete-orphan"
    )

    @property
    def active(self) -> bool:
        return self.status != "resolved"

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "status": self.status,
            "severity": self.severity,
            "title": self.title,
            "root_cause": {
                "service": self.root_service,
                "endpoint": self.root_endpoint,
                "issue": self.root_issue,
            },
            "root_cause_candidates": self.candidates,
            "affected_endpoints": self.affected,
            "first_detected": iso(self.first_detected),
            "last_seen": iso(self.last_seen),
            "resolved_at": iso(self.resolved_at),
            "trace_correlation": {
                "trace_id": self.trace_id,
                "correlated_failures": self.correlated_failures,
            },
            "anomalies": [a.to_dict() for a in self.anomalies],
            "timeline": self.timeline,
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

    incident: Mapped[Incident] = relationship(back_populates="anomalies")

    def to_dict(self) -> dict:
        return {
            "service": self.service,
            "endpoint": self.endpoint,
            "type": self.type,
            "observed": round(self.observed, 4),
            "baseline": None if self.baseline is None else round(self.baseline, 4),
            "request_count": self.request_count,
            "message": self.message,
            "detected_at": iso(self.detected_at),
            "trace_ids": self.trace_ids,
        }
