"""Injected faults, one row per demo endpoint, and one (``*``) for the whole process.

They live in the database, not in process memory, so that every gunicorn
worker and every instance sees an injected fault on its next request.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from aiops.store.models import iso
from telemetry.db import db


class Fault(db.Model):
    __tablename__ = "faults"

    endpoint: Mapped[str] = mapped_column(String(64), primary_key=True)
    delay_ms: Mapped[float] = mapped_column(Float, default=0.0)
    error_rate: Mapped[float] = mapped_column(Float, default=0.0)
    timeout: Mapped[bool] = mapped_column(Boolean, default=False)
    # Added by the callers of this endpoint inside their CLIENT span: a slow network.
    network_delay_ms: Mapped[float] = mapped_column(Float, default=0.0)
    # Only on the process row (``*``): busy threads per process, and until when (None: until cleared).
    cpu_threads: Mapped[int] = mapped_column(Integer, default=0)
    cpu_until: Mapped[float | None] = mapped_column(Float)
    # Latency growing linearly from ``degrade_since`` to ``degrade_factor`` x over ``degrade_ramp_s``.
    degrade_factor: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    degrade_ramp_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    degrade_since: Mapped[float | None] = mapped_column(Float)
    # The endpoint stops answering: its callers' connections are refused.
    stopped: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The endpoint's call to the external peer fails: refused, dns or 5xx (None: it works).
    dependency: Mapped[str | None] = mapped_column(String(16))
    # The endpoint fails with a resource's real error: pool, memory, fds or disk (None: it works).
    exhaust: Mapped[str | None] = mapped_column(String(16))
    invalid: Mapped[bool] = mapped_column(Boolean, default=False)  # answers 200 with a body that is not JSON
    # When a fault that lasts a while ends: the collector failure (row ``otlp-collector``).
    until: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)

    def to_dict(self) -> dict:
        return {
            "endpoint": self.endpoint,
            "delay_ms": self.delay_ms,
            "error_rate": self.error_rate,
            "timeout": self.timeout,
            "network_delay_ms": self.network_delay_ms,
            "cpu_threads": self.cpu_threads,
            "cpu_until": iso(self.cpu_until),
            "degrade_factor": self.degrade_factor,
            "degrade_ramp_s": self.degrade_ramp_s,
            "degrade_since": iso(self.degrade_since),
            "stopped": self.stopped,
            "dependency": self.dependency,
            "exhaust": self.exhaust,
            "invalid": bool(self.invalid),
            "until": iso(self.until),
        }
