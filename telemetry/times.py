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
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
MAX_BACK_SECONDS = 400 * 86_400  # a duration back reaches at most this far


def iso_time(raw: object) -> float:
    if not isinstance(raw, str) or len(raw) > MAX_CHARS:
        raise ValueError(f"an ISO 8601 time like {ISO_EXAMPLE}")
    text = _LEAP_SECOND.sub(":59", raw.strip().upper())
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
    raw = raw.strip()
    if _NUMBER.fullmatch(raw):
        return float(raw)
    try:
        return iso_time(raw)
    except ValueError:
        raise ValueError(f"epoch seconds or an ISO 8601 time like {ISO_EXAMPLE}, not {raw[:40]!r}") from None


def moment(raw: str, now: float) -> float:
    """A duration back from ``now`` (``90s``, ``15m``, ``6h``, ``7d``, ``2w``), epoch seconds or an
    ISO 8601 time."""
    raw = raw.strip()
    duration = _DURATION.fullmatch(raw.lower())
    if duration:
        back = int(duration[1]) * UNIT_SECONDS[duration[2]]
        if back > MAX_BACK_SECONDS:
            raise ValueError(f"a duration back of at most {MAX_BACK_SECONDS // 86_400}d, not {raw!r}")
        return now - back
    try:
        return instant(raw)
    except ValueError:
        raise ValueError(f"a duration back from now (15m, 6h, 7d), epoch seconds or an ISO 8601 time "
                         f"like {ISO_EXAMPLE}, not {raw[:40]!r}") from None


def seconds(raw: str) -> int:
    """A length of time: whole seconds (``300``) or a duration (``30s``, ``5m``, ``1h``, ``1d``)."""
    raw = raw.strip().lower()
    if raw.isascii() and raw.isdigit() and len(raw) <= 9:
        return int(raw)
    duration = _DURATION.fullmatch(raw)
    if duration:
        return int(duration[1]) * UNIT_SECONDS[duration[2]]
    raise ValueError(f"whole seconds (300) or a duration (30s, 5m, 1h), not {raw[:40]!r}")
