"""SLO service functions: they own the transactions. CRUD for the API and pages, the
``AIOPS_SLO_FILE`` config (upserted by name on first use in a process), evaluation (in the
detection cycle, and on every edit), and the alerts a cycle hands to the incident lifecycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from aiops.detection.rules import WHOLE_SERVICE, Anomaly
from aiops.rca.analysis import Group
from aiops.slos import queries, rules
from aiops.slos.rules import Counts
from aiops.slos.spec import FIELDS, SpecError, check
from aiops.store import config_files
from aiops.store.declared import Slo
from aiops.store.models import Incident, iso
from telemetry.db import begin_write, db

SLO_ANOMALY = "slo"  # the anomaly type an SLO alert is recorded as (report kind ``slo``)
MAX_SLOS = 500  # objectives stored at most (each costs a query per cycle)


class SloNotFound(LookupError):
    pass


class SloConflict(ValueError):
    pass


@dataclass(frozen=True)
class Evaluation:
    """One SLO judged at one time (plain data, written to its row by :func:`save`)."""

    rates: dict[str, float]
    status: str
    budget_remaining: float
    daily: dict
    requests_5m: int


# -- reading and editing -------------------------------------------------------------------------


def list_slos() -> list[Slo]:
    return list(db.session.scalars(select(Slo).order_by(Slo.name)))


def get(slo_id: int) -> Slo:
    slo = db.session.get(Slo, slo_id)
    if slo is None:
        raise SloNotFound(f"no SLO {slo_id}")
    return slo


def create(body: object, now: float, source: str = "api") -> Slo:
    spec = check(body)
    begin_write()
    if db.session.scalar(select(Slo.id).where(Slo.name == spec.name)) is not None:
        raise SloConflict(f"name: an SLO named {spec.name!r} exists already")
    if len(list_slos()) >= MAX_SLOS:
        raise SloConflict(f"at most {MAX_SLOS} SLOs")
    slo = Slo(**spec.as_dict(), source=source, created_at=now, updated_at=now)
    db.session.add(slo)
    db.session.flush()
    _apply(slo, evaluate(slo, now), now)
    db.session.commit()
    return slo


def update(slo_id: int, body: object, now: float, source: str | None = None) -> Slo:
    """Replace an SLO by ``body`` (a whole body, as for :func:`create`); its daily counts are
    counted afresh when what it measures changed."""
    spec = check(body)
    begin_write()
    slo = get(slo_id)
    current = {f: getattr(slo, f) for f in FIELDS}
    clash = db.session.scalar(select(Slo.id).where(Slo.name == spec.name, Slo.id != slo_id))
    if clash is not None:
        raise SloConflict(f"name: an SLO named {spec.name!r} exists already")
    if spec.as_dict() != current:
        for field, value in spec.as_dict().items():
            setattr(slo, field, value)
        slo.daily = None  # another objective: its days are counted afresh
        slo.updated_at = now
        if source:
            slo.source = source
        _apply(slo, evaluate(slo, now), now)
    db.session.commit()
    return slo


def delete(slo_id: int) -> None:
    begin_write()
    db.session.delete(get(slo_id))
    db.session.commit()


def to_json(slo: Slo) -> dict:
    today = rules.day_of(slo.evaluated_at) if slo.evaluated_at is not None else None
    daily = _days(slo.daily)
    return {
        "id": slo.id, "name": slo.name, "service": slo.service, "endpoint": slo.endpoint or None,
        "sli": slo.sli, "objective": slo.objective, "threshold_ms": slo.threshold_ms,
        "min_rps": slo.min_rps, "window_days": slo.window_days, "source": slo.source,
        "created_at": iso(slo.created_at), "updated_at": iso(slo.updated_at),
        "evaluated_at": iso(slo.evaluated_at), "status": slo.status or "ok",
        "error_budget": round(rules.error_budget(slo.objective), 6),
        "budget_remaining": None if slo.budget_remaining is None else round(slo.budget_remaining, 6),
        "burn_rates": slo.burn_rates or dict.fromkeys(rules.WINDOWS, 0.0),
        "history": [] if today is None else rules.history(daily, today, slo.objective),
    }


# -- evaluation ----------------------------------------------------------------------------------


def _days(daily: dict | None) -> dict[int, Counts]:
    return {int(d): Counts(g, n) for d, (g, n) in ((daily or {}).get("days") or {}).items()}


def evaluate(slo: Slo, now: float) -> Evaluation:
    """Judge ``slo`` at ``now``: the windows in one query; the completed days not cached yet (one
    query a day, the first time up to 30) added to its cache of daily counts. Writes nothing."""
    windows, today_counts = queries.window_counts(slo, now)
    today = rules.day_of(now)
    keep = max(rules.HISTORY_DAYS, slo.window_days)
    days = _days(slo.daily)
    through = (slo.daily or {}).get("through")
    first = today - keep + 1 if through is None else max(through + 1, today - keep + 1)
    days.update(queries.daily_counts(slo, first, today - 1))
    days[today] = today_counts
    days = {d: c for d, c in days.items() if today - keep < d <= today}
    rates = rules.burn_rates(windows, slo.objective)
    budget = rules.budget_remaining(rules.period_counts(days, today, slo.window_days), slo.objective)
    cache = {"through": max(today - 1, through or 0),
             "days": {str(d): [c.good, c.total] for d, c in days.items()}}
    return Evaluation(rules.rounded(rates), rules.status(rates), budget, cache, windows["5m"].total)


def _apply(slo: Slo, ev: Evaluation, now: float) -> None:
    slo.burn_rates, slo.status = ev.rates, ev.status
    slo.budget_remaining = round(max(ev.budget_remaining, -1e9), 6)
    slo.daily, slo.evaluated_at = ev.daily, now


def evaluate_all(now: float) -> list[tuple[int, Evaluation]]:
    """Every SLO judged at ``now`` (a detection cycle's read phase: writes nothing)."""
    return [(slo.id, evaluate(slo, now)) for slo in list_slos()]


def save(evaluations: list[tuple[int, Evaluation]], now: float) -> None:
    """Write the cycle's evaluations (in the cycle's write transaction; the caller commits)."""
    for slo_id, ev in evaluations:
        slo = db.session.get(Slo, slo_id)
        if slo is not None:  # deleted meanwhile
            _apply(slo, ev, now)


def alert_groups(evaluations: list[tuple[int, Evaluation]], groups: list[Group]) -> list[Group]:
    """One incident group per SLO whose rules fire, rooted where the baseline incident of the same
    root is (open, or opened by this cycle's groups), so the lifecycle adds the alert to it as
    evidence instead of opening a second incident. A whole-service SLO joins the service's."""
    roots = [g.root for g in groups]
    roots += [(i.root_service, i.root_endpoint) for i in db.session.scalars(
        select(Incident).where(Incident.status != "resolved").order_by(Incident.last_seen.desc()))]
    out = []
    for slo_id, ev in evaluations:
        rule = rules.firing(ev.rates)
        slo = db.session.get(Slo, slo_id)
        if rule is None or slo is None:
            continue
        status, threshold, long, short = rule
        root = (slo.service, slo.endpoint or WHOLE_SERVICE)
        if not slo.endpoint:
            root = next((r for r in roots if r[0] == slo.service), root)
        message = (f"SLO {slo.name} ({slo.sli} {slo.objective:g}%): error budget burning "
                   f"{ev.rates[long]:.1f}x over {long} and {ev.rates[short]:.1f}x over {short} "
                   f"(>= {threshold:g}x: {status})")
        anomaly = Anomaly(root[0], root[1], SLO_ANOMALY, ev.rates[long], threshold, ev.requests_5m, message)
        out.append(Group(root, [anomaly], [(root, 1.0)]))
    return out


# -- the config file ------------------------------------------------------------------------------


_load_once = config_files.LoadOnce("AIOPS_SLO_FILE")


def load_config(path: str, now: float) -> int:
    """Upsert the file's SLOs (JSON: a list or ``{"slos": [...]}``; TOML: ``[[slos]]``) by name
    (``source`` ``config``); a wrong entry is logged and skipped. Returns how many were created or
    changed."""
    return config_files.upsert_by_name(
        path, "slos", Slo, lambda body: check(body).name, lambda body: create(body, now, source="config"),
        lambda slo_id, body: update(slo_id, body, now, source="config"), (SpecError, SloConflict))


def load_config_once(path: str | None, now: float) -> None:
    """Load ``AIOPS_SLO_FILE`` the first time this process needs the SLOs (a bad file is logged,
    and tried again next time)."""
    _load_once(path, lambda p: load_config(p, now))
