"""Silences in the store: create, list, read, expire, and the active silence that covers an incident.

Each writing function owns its transaction (``begin_write`` then commit). Reading functions run in
the caller's transaction, so the detection cycle and the outbox see the silences of their own
snapshot. The rules themselves (matchers, times, states) are pure: :mod:`aiops.silences.matchers`,
:mod:`aiops.silences.specs`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import func, select

from aiops.silences import matchers as m
from aiops.silences import specs
from aiops.silences.errors import InvalidSilence, SilenceNotFound
from aiops.store.declared import Silence
from aiops.store.models import iso
from telemetry.db import begin_write, db

MAX_LIVE = 1000  # active and pending silences at once: each is matched against every notifying incident
MAX_EXPIRED_LISTED = 200  # the newest expired silences a list shows
MAX_ID_CHARS = 36


def create(body: object, now: float, default_by: str = specs.DEFAULT_CREATED_BY) -> Silence:
    """Store the silence ``body`` describes (InvalidSilence: nothing stored)."""
    spec = specs.parse(body, now, default_by)
    begin_write()
    try:
        live = db.session.scalar(select(func.count()).select_from(Silence).where(Silence.ends_at > now))
        if live >= MAX_LIVE:
            raise InvalidSilence("body", f"at most {MAX_LIVE} active or pending silences; expire some first")
        silence = Silence(id=str(uuid.uuid4()), matchers=[x.to_dict() for x in spec.matchers],
                          starts_at=spec.starts_at, ends_at=spec.ends_at, created_by=spec.created_by,
                          comment=spec.comment, created_at=now, updated_at=now)
        db.session.add(silence)
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
    return silence


def get(silence_id: str) -> Silence:
    silence = None
    if len(silence_id) <= MAX_ID_CHARS and "\x00" not in silence_id:
        silence = db.session.get(Silence, silence_id)
    if silence is None:
        raise SilenceNotFound(f"no silence {silence_id[:MAX_ID_CHARS]!r}")
    return silence


def expire(silence_id: str, now: float) -> Silence:
    """End the silence now (a pending one never starts); an expired one stays as it was."""
    begin_write()
    try:
        silence = get(silence_id)
        if now < silence.ends_at:
            silence.ends_at = now
            silence.starts_at = min(silence.starts_at, now)
            silence.updated_at = now
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
    return silence


def listed(now: float) -> list[Silence]:
    """Every active and pending silence, then the newest expired ones: active first (ending soonest
    first), then pending (starting soonest first), then expired (newest first)."""
    live = list(db.session.scalars(select(Silence).where(Silence.ends_at > now)))
    expired = list(db.session.scalars(select(Silence).where(Silence.ends_at <= now)
                                      .order_by(Silence.ends_at.desc()).limit(MAX_EXPIRED_LISTED)))
    order = {"active": 0, "pending": 1}
    live.sort(key=lambda s: (order[state(s, now)], s.ends_at if state(s, now) == "active" else s.starts_at))
    return live + expired


def active(now: float) -> list[Silence]:
    """The silences in force at ``now``."""
    return list(db.session.scalars(select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now)))


def count_active(now: float) -> int:
    return db.session.scalar(select(func.count()).select_from(Silence)
                             .where(Silence.starts_at <= now, Silence.ends_at > now)) or 0


def covering(incident: Mapping, silences: Sequence[Silence]) -> Silence | None:
    """The silence among ``silences`` that matches the incident JSON (its report attached), or None;
    of several, the one that lasts longest (then the lowest id), so the answer is stable."""
    return covering_labels(m.labels_of(incident), silences)


def covering_labels(labels: Mapping[str, str], silences: Sequence[Silence]) -> Silence | None:
    """The silence among ``silences`` whose matchers all match ``labels`` (``service``, ``endpoint``,
    ``kind``, ``severity``: an incident's, or a trace-query alert's), as :func:`covering` picks it."""
    found = [s for s in silences if m.matches_all(m.from_stored(s.matchers), labels)]
    return max(found, key=lambda s: (s.ends_at, _neg(s.id)), default=None)


def _neg(text: str) -> tuple:
    return tuple(-ord(c) for c in text)


def state(silence: Silence, now: float) -> str:
    return specs.state(silence.starts_at, silence.ends_at, now)


def to_json(silence: Silence, now: float) -> dict:
    return {
        "id": silence.id,
        "matchers": silence.matchers,
        "starts_at": iso(silence.starts_at),
        "ends_at": iso(silence.ends_at),
        "created_by": silence.created_by,
        "comment": silence.comment,
        "created_at": iso(silence.created_at),
        "updated_at": iso(silence.updated_at),
        "state": state(silence, now),
    }
