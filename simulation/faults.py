"""Validating and storing injected faults (the service behind ``/simulate/*``)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from sqlalchemy import delete, select

from simulation.models import Fault
from telemetry.db import begin_write, db

DEMO_ENDPOINTS = ("checkout", "payment", "inventory", "health")
MAX_DELAY_MS = 600_000


class FaultError(ValueError):
    """Bad fault parameters; the message is shown to the user as a 400."""


def _endpoint(params: Mapping) -> str:
    endpoint = params.get("endpoint")
    if not endpoint:
        raise FaultError(f"'endpoint' is required (one of {', '.join(DEMO_ENDPOINTS)})")
    if endpoint not in DEMO_ENDPOINTS:
        raise FaultError(f"unknown endpoint {endpoint!r} (one of {', '.join(DEMO_ENDPOINTS)})")
    return endpoint


_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _plain_number(raw) -> float | None:
    """A JSON number or a decimal string; None for booleans, ``1_000``, ``inf``, ``0x10`` and the rest
    that Python's ``float()`` would take but no client means."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str) and _NUMBER.fullmatch(raw):
        return float(raw)
    return None


def _number(params: Mapping, name: str, low: float, high: float) -> float:
    raw = params.get(name)
    if raw is None or raw == "":
        raise FaultError(f"'{name}' is required")
    value = _plain_number(raw)
    if value is None:
        raise FaultError(f"'{name}' must be a number, not {raw!r}")
    if not low <= value <= high:  # also rejects NaN
        raise FaultError(f"'{name}' must be between {low:g} and {high:g}, not {value:g}")
    return value


def parse_delay(params: Mapping) -> tuple[str, float]:
    return _endpoint(params), _number(params, "duration", 0, MAX_DELAY_MS)


def parse_error(params: Mapping) -> tuple[str, float]:
    return _endpoint(params), _number(params, "rate", 0, 1)


def parse_endpoint(params: Mapping) -> str:
    return _endpoint(params)


parse_timeout = parse_endpoint  # a timeout takes nothing but the endpoint


def _upsert(endpoint: str, **changes) -> Fault:
    begin_write()
    fault = db.session.get(Fault, endpoint) or Fault(endpoint=endpoint)
    for name, value in changes.items():
        setattr(fault, name, value)
    fault.updated_at = time.time()
    db.session.add(fault)
    db.session.commit()
    return fault


def set_delay(endpoint: str, duration_ms: float) -> Fault:
    return _upsert(endpoint, delay_ms=duration_ms)


def set_error(endpoint: str, rate: float) -> Fault:
    return _upsert(endpoint, error_rate=rate)


def set_timeout(endpoint: str) -> Fault:
    return _upsert(endpoint, timeout=True)


def clear(endpoints: tuple[str, ...] | None = None) -> int:
    """Remove every fault, or only those on ``endpoints``."""
    begin_write()
    query = delete(Fault) if endpoints is None else delete(Fault).where(Fault.endpoint.in_(endpoints))
    removed = db.session.execute(query).rowcount
    db.session.commit()
    return removed or 0


def remediation_targets(payload: object) -> tuple[str, ...]:
    """The demo endpoints a remediation hook's payload names as root cause (the fault to clear)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("incident"), dict):
        raise FaultError('expected the remediation payload {"kind": ..., "incident": {...}}')
    root = payload["incident"].get("root_cause")
    endpoint = root.get("endpoint") if isinstance(root, dict) else None
    return (endpoint,) if endpoint in DEMO_ENDPOINTS else ()


def active() -> list[Fault]:
    return list(db.session.scalars(select(Fault).order_by(Fault.endpoint)))


def for_endpoint(endpoint: str) -> dict | None:
    """The endpoint's fault as plain data; the read transaction ends before the request sleeps."""
    fault = db.session.get(Fault, endpoint)
    data = fault.to_dict() if fault is not None else None
    db.session.close()
    return data
