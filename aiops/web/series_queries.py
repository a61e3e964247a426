"""The charts' data, as ``GET /aiops/series`` and the endpoint and incident pages share it.

A series is :mod:`telemetry.series` (requests, errors, p50/p95 per bucket) plus what this
product knows about the endpoint: its learned baseline and the incidents that touch it.

**Baseline history is not stored**: the ``baselines`` table keeps each endpoint's current EWMA
only (one row, updated each cycle). So ``baseline_ms`` is today's baseline on every point, and
``baseline`` says when it was last learned. The band the charts draw runs from it to
``slow_above_ms``, the line above which detection calls a window slow
(:meth:`aiops.detection.rules.Thresholds.slow_above`), so the page never restates the rule.

**Liveness**: :func:`etag` is a fingerprint of the question and of what can change the answer
between cycles (the detection state's cycle count and last cycle, and the incidents' latest
changes), read with two single-row statements. A page polls with ``If-None-Match`` and gets a
304 without any span being read until a cycle finishes (or an incident is acknowledged or
resolved by hand).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import Thresholds
from aiops.settings import Settings, current_settings
from aiops.store.models import AnomalyRecord, Baseline, Incident, iso
from aiops.web import live
from aiops.web.incident_queries import MAX_SERVICE_CHARS, InvalidInput, text_filter
from telemetry import series, times
from telemetry.db import db

MAX_ENDPOINT_CHARS = 512  # the span column's width
MAX_INCIDENTS = 100  # incidents marked on one chart (the newest)
TRACES = 10  # slowest and failed traces listed on the endpoint page
TRACES_WINDOW = 86_400  # ... from the range's last day
DEFAULT_SINCE = "1h"
RANGES = ("15m", "1h", "6h", "24h", "7d")  # the pages' range links
PAD_MIN = 15 * 60  # an incident chart shows at least this much before detection and after resolution


@dataclass(frozen=True)
class Query:
    service: str
    endpoint: str
    plan: series.Plan
    args: dict  # the raw since/until/step given (the page's links and its polling repeat them)


def parse(args: Mapping[str, str], service: str | None = None, endpoint: str | None = None,
          now: float | None = None) -> Query:
    """``service``, ``endpoint``, ``since`` (default 1h back), ``until`` (default now) and ``step``
    (default: chosen so the range has at most :data:`telemetry.series.TARGET_POINTS`); InvalidInput
    naming the parameter and what it expected."""
    now = time.time() if now is None else now
    values = {"service": service, "endpoint": endpoint}
    for name, width in (("service", MAX_SERVICE_CHARS), ("endpoint", MAX_ENDPOINT_CHARS)):
        if values[name] is None:
            values[name] = text_filter(args, name, width)
        elif len(values[name]) > width or "\x00" in values[name]:
            raise InvalidInput(f"'{name}' must be at most {width} characters, without NUL")
        if not values[name]:
            raise InvalidInput(f"'{name}' is required: the {name} name, as on the dashboard")
    try:
        since, until = times.time_range(args.get("since"), args.get("until"), now, DEFAULT_SINCE)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    step = None
    if args.get("step"):
        try:
            step = times.seconds(args["step"])
        except ValueError as exc:
            raise InvalidInput(f"'step' must be {exc}") from None
    try:
        plan = series.plan(since, until, step)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    raw = {k: args[k] for k in ("since", "until", "step") if args.get(k)}
    return Query(values["service"], values["endpoint"], plan, raw)


def poll_seconds() -> int:
    """How often a chart asks again: the detection interval, within 5..60 s."""
    return int(min(max(current_settings().detection_interval, 5), 60))


def incident_window(first_detected: float, resolved_at: float | None, last_seen: float,
                    now: float) -> tuple[float, float]:
    """The range an incident's charts show: before detection and after resolution, by half its
    length and at least :data:`PAD_MIN`. An active incident's runs to now, unless nothing was
    seen of it for longer than that pad (a replayed incident, on the data's old clock): then it
    ends that pad after it was last seen."""
    end = resolved_at if resolved_at is not None else max(first_detected, min(last_seen, now))
    pad = max(PAD_MIN, (end - first_detected) / 2)
    if resolved_at is None and now - end <= pad:
        return first_detected - pad, now
    return first_detected - pad, min(now, end + pad)


def _baseline(service: str, endpoint: str, th: Thresholds) -> dict | None:
    row = db.session.get(Baseline, (service, endpoint))
    if row is None or row.latency_ms is None or not math.isfinite(row.latency_ms):
        return None
    value = BaselineValue(row.latency_ms, row.error_rate, row.samples, row.windows)
    return {"latency_ms": round(row.latency_ms, 3), "slow_above_ms": round(th.slow_above(row.latency_ms), 3),
            "error_rate": round(row.error_rate or 0.0, 4), "ready": th.judges(value),
            "learned_at": iso(row.updated_at)}


def incidents(service: str, endpoint: str, since: float, until: float) -> list[dict]:
    """The incidents overlapping the range whose root is this endpoint or that recorded an anomaly
    on it (an affected endpoint), newest first, at most :data:`MAX_INCIDENTS`."""
    overlapping = db.session.scalars(
        select(Incident).where(Incident.first_detected < until,
                               (Incident.resolved_at.is_(None)) | (Incident.resolved_at >= since))
        .order_by(Incident.first_detected.desc()).limit(10 * MAX_INCIDENTS)).all()
    ids = [i.id for i in overlapping if (i.root_service, i.root_endpoint) != (service, endpoint)]
    touched = set(db.session.scalars(select(AnomalyRecord.incident_id).distinct().where(
        AnomalyRecord.incident_id.in_(ids), AnomalyRecord.service == service,
        AnomalyRecord.endpoint == endpoint))) if ids else set()
    out = []
    for i in overlapping:
        root = (i.root_service, i.root_endpoint) == (service, endpoint)
        if root or i.id in touched:
            out.append({"id": i.id, "title": i.title, "status": i.status, "severity": i.severity,
                        "root": root, "first_detected": iso(i.first_detected),
                        "resolved_at": iso(i.resolved_at)})
    return out[:MAX_INCIDENTS]


def read(q: Query, settings: Settings) -> dict:
    """``GET /aiops/series``' answer (docs/http-api.md has an example)."""
    p = q.plan
    found = series.read(q.service, q.endpoint, p)
    base = _baseline(q.service, q.endpoint, Thresholds.from_settings(settings))
    baseline_ms = base["latency_ms"] if base else None
    points = [{**pt, "t": iso_ms(pt["t"]), "baseline_ms": baseline_ms} for pt in found.points]
    return {"service": q.service, "endpoint": q.endpoint, "since": iso_ms(p.since), "until": iso_ms(p.until),
            "step": p.step, "sample_every": found.sample_every, "baseline": base, "points": points,
            "incidents": incidents(q.service, q.endpoint, p.since, p.until)}


def iso_ms(ts: float) -> str:
    """Epoch seconds -> ISO 8601 UTC (whole seconds unless the time has a fraction)."""
    text = iso(ts)
    frac = round(ts % 1, 3)
    return text if not frac or frac >= 1 else f"{text[:-1]}.{int(frac * 1000):03d}Z"


def traces(q: Query) -> dict[str, list]:
    """The endpoint page's slowest and failed traces: of the range's last :data:`TRACES_WINDOW`
    seconds ("recent"; a week of spans would cost a sort of all of them)."""
    since = max(q.plan.since, q.plan.until - TRACES_WINDOW)
    return series.recent_traces(q.service, q.endpoint, since, q.plan.until, TRACES)


def etag(q: Query) -> str:
    """A strong validator of ``q``'s answer until the next cycle or incident change (module doc)."""
    return live.etag(q.service, q.endpoint, sorted(q.args.items()))


MAX_AFFECTED_CHARTS = 12


def incident_charts(incident: Incident, data: Mapping, now: float) -> dict:
    """The incident page's charts: the root endpoint's around the incident (with its series read
    now, for the page's table without script) and one per affected endpoint (each in the service
    its anomalies name, else the root's). ``args`` are ``/aiops/series``' since/until: an active
    incident's run to now, so the charts grow with it."""
    since, until = incident_window(incident.first_detected, incident.resolved_at, incident.last_seen, now)
    until = max(until, since + PAD_MIN)  # a replayed incident's clock may run ahead of this one
    args = {"since": iso_ms(since)}
    if until != now:  # else the charts grow with the incident
        args["until"] = iso_ms(until)
    services = {}
    for a in data.get("anomalies") or ():
        services.setdefault(a.get("endpoint"), a.get("service"))
    affected = [{"service": services.get(e) or incident.root_service, "endpoint": e}
                for e in incident.affected or () if e and e != incident.root_endpoint]
    root = None
    if incident.root_endpoint:  # a whole-service root has no endpoint to chart
        root = {"service": incident.root_service, "endpoint": incident.root_endpoint}
        q = Query(incident.root_service, incident.root_endpoint, series.plan(since, until), args)
        root["data"] = read(q, current_settings())
    return {"args": args, "root": root, "affected": affected[:MAX_AFFECTED_CHARTS],
            "more_affected": max(len(affected) - MAX_AFFECTED_CHARTS, 0),
            "detected": iso_ms(incident.first_detected),
            "resolved": iso_ms(incident.resolved_at) if incident.resolved_at is not None else None}
