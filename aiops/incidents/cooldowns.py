"""Per-pattern cooldowns (the design's ``cooldown_minutes``): one table, keyed by incident kind.

A pattern that fires again soon on the same root does not page twice: an incident that reopens
(or recurs as a new incident linked to the one before) with the kind it already paged as, within
that kind's cooldown of that page, is recorded and shown as usual but its trigger is held until
the cooldown has passed (if it is still going then, it pages). Another kind pages at once: what
fails has changed. Pure logic; :mod:`aiops.incidents.lifecycle` applies it.

The kinds that existed before the table (latency, errors, timeout, cascading) keep 0: a
recurrence of them already has to persist ``AIOPS_NOTIFY_AFTER_CYCLES`` again before it pages.
Kinds not in the table get :data:`DEFAULT_MINUTES`.
"""

from __future__ import annotations

COOLDOWN_MINUTES: dict[str, float] = {
    "latency": 0,
    "errors": 0,
    "timeout": 0,
    "cascading": 0,
    "dependency": 30,  # a flapping peer: one page per half hour is enough to act on
    "exhaustion": 60,  # a resource that refills and runs out again: the same fix
    "invalid_response": 30,
    "timeouts": 30,  # already recurring by definition
    "degradation": 60,  # a slow creep comes and goes around its threshold: the same fix
    "traffic_drop": 30,  # a crash-looping endpoint: one page per half hour
    "slo": 60,  # a budget burning on and off is one conversation with the owners
}
DEFAULT_MINUTES = 0.0


def minutes(kind: str) -> float:
    return COOLDOWN_MINUTES.get(kind, DEFAULT_MINUTES)


def held_until(kind: str, paged_kind: str | None, paged_at: float | None) -> float | None:
    """Until when a page of ``kind`` is held, after a page of ``paged_kind`` at ``paged_at`` about the
    same root (None: it pages now)."""
    if paged_at is None or paged_kind != kind or minutes(kind) <= 0:
        return None
    return paged_at + minutes(kind) * 60.0


def is_held(kind: str, paged_kind: str | None, paged_at: float | None, now: float) -> bool:
    until = held_until(kind, paged_kind, paged_at)
    return until is not None and now < until
