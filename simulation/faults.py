"""Validating and storing injected faults (the service behind ``/simulate/*``)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from functools import partial

from flask import Flask
from sqlalchemy import delete, select

from simulation import external
from simulation.cpuhog import hog
from simulation.models import Fault
from telemetry.db import begin_write, db

DEMO_ENDPOINTS = ("checkout", "payment", "inventory", "health")
# The row of faults on the whole process rather than one endpoint (the CPU hog).
PROCESS = "*"
# The endpoints the demo calls over the network (checkout calls them). Nothing
# calls checkout or health that way, so a network fault on them would do nothing.
NETWORK_ENDPOINTS = ("payment", "inventory")
MAX_DELAY_MS = 600_000
MAX_DEGRADE_FACTOR = 100.0
MAX_RAMP_S = 86_400.0
MAX_CPU_THREADS = 4  # per process: enough to slow it, few enough to stay a demo
MAX_CPU_SECONDS = 3600


class FaultError(ValueError):
    """Bad fault parameters; the message is shown to the user as a 400."""


def _endpoint(params: Mapping) -> str:
    endpoint = params.get("endpoint")
    if not endpoint:
        raise FaultError(f"'endpoint' is required (one of {', '.join(DEMO_ENDPOINTS)})")
    if endpoint not in DEMO_ENDPOINTS:
        raise FaultError(f"'endpoint': unknown endpoint {str(endpoint)[:64]!r} "
                         f"(one of {', '.join(DEMO_ENDPOINTS)})")
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


def number(params: Mapping, name: str, low: float, high: float) -> float:
    raw = params.get(name)
    if raw is None or raw == "":
        raise FaultError(f"'{name}' is required")
    value = _plain_number(raw)
    if value is None:
        raise FaultError(f"'{name}' must be a number, not {raw!r}")
    if not low <= value <= high:  # also rejects NaN
        raise FaultError(f"'{name}' must be between {low:g} and {high:g}, not {value:g}")
    return value


def check_only(params: Mapping, *names: str) -> None:
    """Refuse unknown parameters: a typo (``duration`` for ``delay_ms``) must not pass as a default."""
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise FaultError(f"unknown parameter {unknown[0]!r} (expected {', '.join(names)})")


def parse_delay(params: Mapping) -> tuple[str, float]:
    return _endpoint(params), number(params, "duration", 0, MAX_DELAY_MS)


def parse_error(params: Mapping) -> tuple[str, float]:
    return _endpoint(params), number(params, "rate", 0, 1)


def parse_endpoint(params: Mapping) -> str:
    return _endpoint(params)


parse_timeout = parse_endpoint  # a timeout takes nothing but the endpoint


def parse_network(params: Mapping) -> tuple[str, float]:
    check_only(params, "endpoint", "delay_ms")
    endpoint = _endpoint(params)
    if endpoint not in NETWORK_ENDPOINTS:
        raise FaultError(f"nothing calls {endpoint!r} over the network in the demo; "
                         f"a network fault applies to {', '.join(NETWORK_ENDPOINTS)}")
    return endpoint, number(params, "delay_ms", 0, MAX_DELAY_MS)


def parse_cpu(params: Mapping) -> tuple[int, float | None]:
    """``threads`` busy threads per process (default 1), for ``duration`` seconds (default: until cleared)."""
    check_only(params, "threads", "duration")
    threads = number(params, "threads", 1, MAX_CPU_THREADS) if "threads" in params else 1
    if threads != int(threads):
        raise FaultError(f"'threads' must be a whole number, not {threads:g}")
    duration = number(params, "duration", 1, MAX_CPU_SECONDS) if "duration" in params else None
    return int(threads), duration


def parse_degrade(params: Mapping) -> tuple[str, float, float]:
    """``factor`` x the endpoint's latency (default 2), reached linearly over ``ramp_s`` seconds
    (default 600; 0: at once) from the injection."""
    check_only(params, "endpoint", "factor", "ramp_s")
    endpoint = _endpoint(params)
    factor = number(params, "factor", 1, MAX_DEGRADE_FACTOR) if "factor" in params else 2.0
    ramp = number(params, "ramp_s", 0, MAX_RAMP_S) if "ramp_s" in params else 600.0
    return endpoint, factor, ramp


def parse_stop(params: Mapping) -> str:
    """An endpoint the demo calls over the network (its callers' connections are refused)."""
    check_only(params, "endpoint")
    endpoint = _endpoint(params)
    if endpoint not in NETWORK_ENDPOINTS:
        raise FaultError(f"nothing calls {endpoint!r} over the network in the demo, so nothing could be "
                         f"refused; 'endpoint' must be one of {', '.join(NETWORK_ENDPOINTS)}")
    return endpoint


def _choice(params: Mapping, name: str, choices: tuple[str, ...]) -> str:
    raw = params.get(name)
    if raw is None or raw == "":
        raise FaultError(f"'{name}' is required (one of {', '.join(choices)})")
    if raw not in choices:
        raise FaultError(f"'{name}' must be one of {', '.join(choices)}, not {str(raw)[:64]!r}")
    return raw


def parse_dependency(params: Mapping) -> tuple[str, str]:
    """The endpoint whose call to the external peer fails, and how (refused, dns, 5xx)."""
    check_only(params, "endpoint", "mode")
    endpoint = _endpoint(params)
    if endpoint not in external.CALLERS:
        raise FaultError(f"'endpoint': {endpoint!r} calls no external peer in the demo; "
                         f"a dependency fault applies to {', '.join(external.CALLERS)}")
    return endpoint, _choice(params, "mode", external.MODES)


def parse_exhaust(params: Mapping) -> tuple[str, str]:
    """The endpoint that fails with a resource's error, and which (pool, memory, fds, disk)."""
    check_only(params, "endpoint", "resource")
    return _endpoint(params), _choice(params, "resource", external.RESOURCES)


def parse_invalid(params: Mapping) -> str:
    """An endpoint the demo calls over HTTP (its caller is the one that cannot parse the answer)."""
    check_only(params, "endpoint")
    endpoint = _endpoint(params)
    if endpoint not in NETWORK_ENDPOINTS:
        raise FaultError(f"'endpoint': nothing in the demo parses {endpoint!r}'s answers; "
                         f"an invalid-response fault applies to {', '.join(NETWORK_ENDPOINTS)}")
    return endpoint


def parse_clear(params: Mapping) -> str:
    """One endpoint, or ``*`` for the process-wide faults (the CPU hog)."""
    return PROCESS if params.get("endpoint") == PROCESS else _endpoint(params)


def upsert(endpoint: str, **changes) -> Fault:
    begin_write()
    fault = db.session.get(Fault, endpoint) or Fault(endpoint=endpoint)
    for name, value in changes.items():
        setattr(fault, name, value)
    fault.updated_at = time.time()
    db.session.add(fault)
    db.session.commit()
    return fault


def set_delay(endpoint: str, duration_ms: float) -> Fault:
    return upsert(endpoint, delay_ms=duration_ms)


def set_error(endpoint: str, rate: float) -> Fault:
    return upsert(endpoint, error_rate=rate)


def set_timeout(endpoint: str) -> Fault:
    return upsert(endpoint, timeout=True)


def set_network(endpoint: str, delay_ms: float) -> Fault:
    return upsert(endpoint, network_delay_ms=delay_ms)


def set_degrade(endpoint: str, factor: float, ramp_s: float) -> Fault:
    return upsert(endpoint, degrade_factor=factor, degrade_ramp_s=ramp_s, degrade_since=time.time())


def set_stop(endpoint: str) -> Fault:
    return upsert(endpoint, stopped=True)


def degrade_factor(fault: dict | None, now: float) -> float:
    """How many times its normal latency a degraded endpoint takes at ``now`` (1: not degraded):
    growing linearly from 1 at the injection to the factor after ``ramp_s``."""
    since = (fault or {}).get("degrade_since_epoch")
    if not fault or fault.get("degrade_factor", 0) <= 1 or since is None:
        return 1.0
    ramp = fault["degrade_ramp_s"]
    progress = 1.0 if ramp <= 0 else min(1.0, max(0.0, (now - since) / ramp))
    return 1.0 + (fault["degrade_factor"] - 1.0) * progress


def set_dependency(endpoint: str, mode: str) -> Fault:
    return upsert(endpoint, dependency=mode)


def set_exhaust(endpoint: str, resource: str) -> Fault:
    return upsert(endpoint, exhaust=resource)


def set_invalid(endpoint: str) -> Fault:
    return upsert(endpoint, invalid=True)


def set_cpu(threads: int, duration_s: float | None) -> Fault:
    until = None if duration_s is None else time.time() + duration_s
    return upsert(PROCESS, cpu_threads=threads, cpu_until=until)


def clear(endpoints: tuple[str, ...] | None = None) -> int:
    """Remove every fault, or only those on ``endpoints``."""
    begin_write()
    query = delete(Fault) if endpoints is None else delete(Fault).where(Fault.endpoint.in_(endpoints))
    removed = db.session.execute(query).rowcount
    db.session.commit()
    return removed or 0


def remediation_targets(payload: object) -> tuple[str, ...]:
    """The faults a remediation hook's payload points at: its root-cause endpoint's, and the
    process-wide CPU hog's (which slows that endpoint too)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("incident"), dict):
        raise FaultError('expected the remediation payload {"kind": ..., "incident": {...}}')
    root = payload["incident"].get("root_cause")
    endpoint = root.get("endpoint") if isinstance(root, dict) else None
    return (endpoint, PROCESS) if endpoint in DEMO_ENDPOINTS else ()


def active() -> list[Fault]:
    """Every stored fault, but not a CPU hog or a collector failure whose duration has ended."""
    now = time.time()
    return [f for f in db.session.scalars(select(Fault).order_by(Fault.endpoint))
            if not (f.endpoint == PROCESS and f.cpu_until is not None and f.cpu_until <= now)
            and not (f.until is not None and f.until <= now)]


def for_endpoint(endpoint: str) -> dict | None:
    """The endpoint's fault as plain data; the read transaction ends before the request sleeps."""
    fault = db.session.get(Fault, endpoint)
    data = fault.to_dict() if fault is not None else None
    if data is not None:
        data["degrade_since_epoch"] = fault.degrade_since  # for degrade_factor
    db.session.close()
    return data


def follow_cpu(app: Flask, force: bool = False) -> None:
    """Start or stop this process's CPU hog to match the stored fault (at most once a second
    unless ``force``); see :mod:`simulation.cpuhog`."""
    hog.refresh(partial(_cpu_setting, app), force)


def _cpu_setting(app: Flask) -> tuple[int, float | None]:
    """The stored ``(threads, until)``, in an app context of its own (the hog's watcher has none)."""
    with app.app_context():
        try:
            fault = db.session.get(Fault, PROCESS)
            return (fault.cpu_threads, fault.cpu_until) if fault else (0, None)
        finally:
            db.session.remove()
