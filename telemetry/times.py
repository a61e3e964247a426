"""Times as users write them, checked once for every API and page. Pure.

- :func:`iso_time`: an ISO 8601 / RFC 3339 time (lowercase ``t``/``z`` and a leap second allowed;
  without an offset, UTC) -> epoch seconds;
- :func:`instant`: that, or epoch seconds (``1737404800.5``);
- :func:`moment`: that, or a duration back from ``now`` (``15m``, ``6h``, ``7d``), as the chart,
  map and trace pages take ``since`` and ``until``;
- :func:`seconds`: a length of time, ``300`` or ``5m`` (a chart's ``step``).

Each raises :class:`ValueError` with a message that says what it expected; callers turn it into
their own 400.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

MAX_CHARS = 64
ISO_EXAMPLE = "2026-01-20T10:30:00Z"
_NUMBER = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")  # as the OpenAPI document's pattern
_LEAP_SECOND = re.compile(r"(?<=T[0-9]{2}:[0-9]{2}):60")
_DURATION = re.compile(r"([0-9]{1,6})([smhdw])")
LAST_SECOND = 253_402_300_799.0  # 9999-12-31T23:59:59Z
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def iso_time(raw: object) -> float:
    if not isinstance(raw, str) or len(raw) > MAX_CHARS:
        raise ValueError(f"an ISO 8601 time like {ISO_EXAMPLE}")
    text = _LEAP_SECOND.sub(":59", raw.upper())
    try:
        when = datetime.fromisoformat(text)
        value = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError):
        raise ValueError(f"an ISO 8601 time like {ISO_EXAMPLE}, not {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"an ISO 8601 time like {ISO_EXAMPLE}")
    return value


def instant(raw: str) -> float:
    """Epoch seconds or an ISO 8601 time."""
    if _NUMBER.fullmatch(raw):
        return float(raw)
    try:
        return iso_time(raw)
    except ValueError:
        raise ValueError(f"epoch seconds or an ISO 8601 time like {ISO_EXAMPLE}, not {raw[:40]!r}") from None


def moment(raw: str, now: float) -> float:
    """A duration back from ``now`` (``90s``, ``15m``, ``6h``, ``7d``, ``2w``), epoch seconds or an
    ISO 8601 time."""
    duration = _DURATION.fullmatch(raw.lower())
    if duration:
        return now - int(duration[1]) * UNIT_SECONDS[duration[2]]
    try:
        return instant(raw)
    except ValueError:
        raise ValueError(f"a duration back from now (15m, 6h, 7d), epoch seconds or an ISO 8601 time "
                         f"like {ISO_EXAMPLE}, not {raw[:40]!r}") from None


def time_range(since: str | None, until: str | None, now: float, default_since: str) -> tuple[float, float]:
    """``since`` (empty: ``default_since`` back) and ``until`` (empty: now), each as :func:`moment`
    takes it, held within 1970..9999 (no span is stored outside it, and an answer can write both as
    ISO 8601); ValueError names the field (``'since' must be ...``), or says they are out of order."""
    bounds = []
    for name, raw, default in (("since", since, default_since), ("until", until, "0s")):
        try:
            bounds.append(min(max(moment(raw or default, now), 0.0), LAST_SECOND))
        except ValueError as exc:
            raise ValueError(f"'{name}' must be {exc}") from None
    if bounds[0] > bounds[1]:
        raise ValueError("'since' must not be after 'until'")
    return bounds[0], bounds[1]


def seconds(raw: str) -> int:
    """A length of time: whole seconds (``300``) or a duration (``30s``, ``5m``, ``1h``, ``1d``)."""
    raw = raw.strip().lower()
    if raw.isascii() and raw.isdigit() and len(raw) <= 9:
        return int(raw)
    duration = _DURATION.fullmatch(raw)
    if duration:
        return int(duration[1]) * UNIT_SECONDS[duration[2]]
    raise ValueError(f"whole seconds (300) or a duration (30s, 5m, 1h), not {raw[:40]!r}")
