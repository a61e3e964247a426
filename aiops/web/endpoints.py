"""Per-endpoint health for ``/aiops/metrics`` and the dashboard."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from sqlalchemy import select

from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import Key
from aiops.settings import Settings
from aiops.store.models import Baseline
from telemetry import store
from telemetry.db import db


def endpoint_name(service: str, endpoint: str, own_service: str) -> str:
    """The demo keeps its contract names; other services are ``service endpoint``."""
    return endpoint if service == own_service else f"{service} {endpoint}"


def summarise(rows: Iterable[Mapping], baselines: Mapping, own_service: str) -> dict:
    """Fold (service, endpoint, status) aggregates into the contract's metrics shape."""
    out: dict[str, dict] = {}
    totals: dict[str, list[float]] = {}
    for row in rows:
        name = endpoint_name(row["service"], row["endpoint"], own_service)
        m = out.setdefault(name, {
            "service": row["service"],
            "endpoint": row["endpoint"],
            "avg_latency_ms": 0.0,
            "baseline_latency_ms": None,
            "error_rate": 0.0,
            "request_count": 0,
            "status_distribution": {},
        })
        acc = totals.setdefault(name, [0.0, 0.0])
        acc[0] += row["total_ms"] or 0.0
        acc[1] += row["errors"] or 0
        m["request_count"] += row["n"]
        status = "none" if row["status_code"] is None else str(row["status_code"])
        m["status_distribution"][status] = m["status_distribution"].get(status, 0) + row["n"]
    for name, m in out.items():
        total_ms, errors = totals[name]
        n = m["request_count"]
        m["avg_latency_ms"] = round(total_ms / n, 2) if n else 0.0
        m["error_rate"] = round(errors / n, 4) if n else 0.0
        base = baselines.get((m["service"], m["endpoint"]))
        m["baseline_latency_ms"] = None if base is None else round(base, 2)
    return dict(sorted(out.items()))


def baselines() -> dict[Key, BaselineValue]:
    """Every endpoint's learned baseline, as detection judges against it."""
    return {(b.service, b.endpoint): BaselineValue(b.latency_ms, b.error_rate, b.samples, b.windows)
            for b in db.session.scalars(select(Baseline))}


def current(settings: Settings, now: float | None = None,
            learned: Mapping[Key, BaselineValue] | None = None) -> dict:
    """The metrics of the last ``AIOPS_METRICS_WINDOW``; ``learned``: the baselines, if already read."""
    now = time.time() if now is None else now
    ignored = settings.ignore_services
    rows = store.endpoint_stats(now - settings.metrics_window, ignored)
    learned = baselines() if learned is None else learned
    return summarise(rows, {key: b.latency_ms for key, b in learned.items()}, settings.service_name)
