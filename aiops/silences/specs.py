"""A silence as a request describes it, checked field by field; and a silence's state at a time.

Pure logic: ``POST /aiops/silences``' body in, a :class:`SilenceSpec` out, or
:class:`InvalidSilence` naming the field that is wrong. Times are ISO 8601 (``2026-01-20T10:30:00Z``;
without an offset, UTC) and become epoch seconds. A silence is ``pending`` before its start,
``active`` from its start until its end, and ``expired`` from then on: its state follows from
the clock, so silences expire by themselves and no job has to end them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiops.silences import matchers as m
from aiops.silences.errors import InvalidSilence
from telemetry import times

FIELDS = ("matchers", "starts_at", "ends_at", "created_by", "comment")
MAX_CREATED_BY, MAX_COMMENT = 200, 2000  # characters (as an incident's acknowledge "by" and "comment")
MAX_DURATION = 366 * 86400.0  # seconds a silence may last: a maintenance window, not a mute forever
STATES = ("active", "pending", "expired")
DEFAULT_CREATED_BY = "api"


@dataclass(frozen=True)
class SilenceSpec:
    matchers: list[m.Matcher]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str


def parse(body: object, now: float, default_by: str = DEFAULT_CREATED_BY) -> SilenceSpec:
    """The silence ``body`` asks for; ``starts_at`` defaults to ``now``. The end must come after the
    start and after ``now``, within :data:`MAX_DURATION` of the start."""
    if not isinstance(body, Mapping):
        raise InvalidSilence("body", 'must be a JSON object like {"matchers": [...], "ends_at": "..."}')
    unknown = sorted(str(k) for k in body if k not in FIELDS)
    if unknown:
        raise InvalidSilence(unknown[0][:40], f"is not a silence field (fields: {', '.join(FIELDS)})")
    matchers = m.parse(body.get("matchers"))
    starts_at = now if body.get("starts_at") in (None, "") else parse_time(body["starts_at"], "starts_at")
    if "ends_at" not in body or body["ends_at"] in (None, ""):
        raise InvalidSilence("ends_at", "is required (ISO 8601, e.g. 2026-01-20T12:00:00Z)")
    ends_at = parse_time(body["ends_at"], "ends_at")
    if ends_at <= starts_at:
        raise InvalidSilence("ends_at", "must be after starts_at")
    if ends_at <= now:
        raise InvalidSilence("ends_at", "must be in the future")
    if ends_at - starts_at > MAX_DURATION:
        raise InvalidSilence("ends_at", f"must be within {MAX_DURATION / 86400:g} days of starts_at")
    created_by = text(body.get("created_by"), "created_by", MAX_CREATED_BY) or default_by
    comment = text(body.get("comment"), "comment", MAX_COMMENT)
    return SilenceSpec(matchers, starts_at, ends_at, created_by, comment)


def text(value: object, field: str, max_chars: int) -> str:
    """An optional free-text field: a string of at most ``max_chars``, without NUL (None: empty)."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > max_chars or "\x00" in value:
        raise InvalidSilence(field, f"must be a string of at most {max_chars} characters")
    return value.strip()


def parse_time(raw: object, field: str) -> float:
    """An ISO 8601 time (RFC 3339's lowercase ``t``/``z`` and leap second allowed) -> epoch seconds."""
    try:
        return times.iso_time(raw)
    except ValueError as exc:
        raise InvalidSilence(field, f"must be {exc}") from None


def state(starts_at: float, ends_at: float, now: float) -> str:
    """``pending``, ``active`` or ``expired`` at ``now``."""
    if now >= ends_at:
        return "expired"
    return "pending" if now < starts_at else "active"
