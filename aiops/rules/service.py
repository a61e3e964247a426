"""Rule service functions: they own the transactions. CRUD for the API and the page, the
``AIOPS_RULES_FILE`` config (upserted by name on first use in a process), and the alerts' JSON.
Evaluation is :mod:`aiops.rules.evaluation`'s, and runs in the worker only: an edit never evaluates.

A rule's ``webhook_url`` is a secret (a Slack-style URL carries its key in the path), so the JSON
shows it masked (``https://hooks.example.com/***``); a PUT that sends the masked form back keeps the
stored URL.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import func, select

from aiops.rules.spec import FIELDS, SpecError, check
from aiops.store import config_files
from aiops.store.declared import Rule, RuleAlert
from aiops.store.models import iso
from telemetry.db import begin_write, db

MAX_RULES = 500  # rules stored at most (each costs a query every interval)
MAX_ID = 2**31 - 1
MASK = "***"


class RuleNotFound(LookupError):
    pass


class RuleConflict(ValueError):
    pass


# -- reading and editing -------------------------------------------------------------------------


def list_rules() -> list[Rule]:
    return list(db.session.scalars(select(Rule).order_by(Rule.name)))


def get(rule_id: int) -> Rule:
    rule = db.session.get(Rule, rule_id) if 0 <= rule_id <= MAX_ID else None
    if rule is None:
        raise RuleNotFound(f"no rule {rule_id}")
    return rule


def create(body: object, now: float, source: str = "api") -> Rule:
    spec = check(body)
    begin_write()
    try:
        if db.session.scalar(select(Rule.id).where(Rule.name == spec.name)) is not None:
            raise RuleConflict(f"name: a rule named {spec.name!r} exists already")
        if db.session.scalar(select(func.count()).select_from(Rule)) >= MAX_RULES:
            raise RuleConflict(f"at most {MAX_RULES} rules")
        rule = Rule(**spec.as_dict(), source=source, created_at=now, updated_at=now)
        db.session.add(rule)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return rule


def update(rule_id: int, body: object, now: float, source: str | None = None) -> Rule:
    """Replace a rule by ``body`` (a whole body, as for :func:`create`; its masked ``webhook_url``
    keeps the stored one). A changed rule is judged afresh: its status is cleared."""
    spec = check(body)
    begin_write()
    try:
        rule = get(rule_id)
        clash = db.session.scalar(select(Rule.id).where(Rule.name == spec.name, Rule.id != rule_id))
        if clash is not None:
            raise RuleConflict(f"name: a rule named {spec.name!r} exists already")
        values = spec.as_dict()
        if values["webhook_url"] is not None and values["webhook_url"] == masked(rule.webhook_url):
            values["webhook_url"] = rule.webhook_url
        if values != {f: getattr(rule, f) for f in FIELDS}:
            for field, value in values.items():
                setattr(rule, field, value)
            rule.updated_at = now
            rule.status = rule.value = rule.last_error = None
            if source:
                rule.source = source
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return rule


def delete(rule_id: int) -> None:
    """Delete the rule (its alerts stay listed, under its name)."""
    begin_write()
    try:
        db.session.delete(get(rule_id))
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def masked(url: str | None) -> str | None:
    """``https://hooks.example.com/services/T0/B0/xyz`` -> ``https://hooks.example.com/***``: the
    scheme and host, but not the path or query that may be the receiver's secret."""
    if not url:
        return None
    split = urlsplit(url)
    host = split.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{split.port}" if split.port else ""
    hidden = split.path not in ("", "/") or split.query or split.fragment or split.username
    return f"{split.scheme}://{netloc}/{MASK if hidden else ''}"


def to_json(rule: Rule) -> dict:
    return {
        "id": rule.id, "name": rule.name, "kind": rule.kind, "query": rule.query, "window_s": rule.window_s,
        "aggregation": rule.aggregation, "threshold": rule.threshold, "severity": rule.severity,
        "webhook_url": masked(rule.webhook_url), "source": rule.source,
        "created_at": iso(rule.created_at), "updated_at": iso(rule.updated_at),
        "evaluated_at": iso(rule.evaluated_at), "status": rule.status or "pending",
        "value": rule.value, "last_error": rule.last_error,
    }


# -- alerts ----------------------------------------------------------------------------------------


def alerts_page(limit: int, after: tuple[float, int] | None) -> list[RuleAlert]:
    """Alerts newest first (by first seen, then id), ``limit`` of them after the position ``after``."""
    stmt = select(RuleAlert).order_by(RuleAlert.first_seen.desc(), RuleAlert.id.desc()).limit(limit)
    if after is not None:
        at, last_id = after
        stmt = stmt.where((RuleAlert.first_seen < at)
                          | ((RuleAlert.first_seen == at) & (RuleAlert.id < last_id)))
    return list(db.session.scalars(stmt))


def alert_json(alert: RuleAlert) -> dict:
    """An alert as the API lists it and its webhook receives it (with ``version``, ``event``...)."""
    return {
        "id": alert.id, "rule": alert.rule, "rule_id": alert.rule_id, "anomaly_type": alert.anomaly_type,
        "severity": alert.severity, "trace_id": alert.trace_id, "span_name": alert.span_name,
        "service": alert.service, "duration_ms": alert.duration_ms, "error_message": alert.error_message,
        "affected_traces": alert.affected_traces, "total_traces": alert.total_traces,
        "aggregation": alert.aggregation, "value": alert.value, "threshold": alert.threshold,
        "trace_ids": alert.trace_ids, "timestamp": iso(alert.first_seen), "last_seen": iso(alert.last_seen),
        "seen": alert.seen, "notification": alert.notification,
    }


def alert_counts() -> dict[str, int]:
    """Alerts recorded so far, per anomaly type (``trace_anomalies_total``)."""
    rows = db.session.execute(select(RuleAlert.anomaly_type, func.count()).group_by(RuleAlert.anomaly_type))
    return {kind: n for kind, n in rows}


# -- the config file ------------------------------------------------------------------------------


_load_once = config_files.LoadOnce("AIOPS_RULES_FILE")


def load_config(path: str, now: float) -> int:
    """Upsert the file's rules (JSON: a list or ``{"rules": [...]}``; TOML: ``[[rules]]``) by name
    (``source`` ``config``); a wrong entry is logged and skipped. Returns how many were created or
    replaced."""
    return config_files.upsert_by_name(
        path, "rules", Rule, lambda body: check(body).name, lambda body: create(body, now, source="config"),
        lambda rule_id, body: update(rule_id, body, now, source="config"), (SpecError, RuleConflict))


def load_config_once(path: str | None, now: float) -> None:
    """Load ``AIOPS_RULES_FILE`` the first time this process needs the rules (a bad file is logged,
    and tried again next time)."""
    _load_once(path, lambda p: load_config(p, now))
