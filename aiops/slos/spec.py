"""What an SLO body may say, pure: a JSON object in, a checked :class:`Spec` out, or
:class:`SpecError` naming the first field that is wrong (the API answers it with a 400).

``{"name", "service", "endpoint" (optional: the whole service), "sli": "availability" | "latency" |
"throughput", "objective": 99.9 (percent, above 0 and below 100), "threshold_ms" (latency only,
required there), "min_rps" (throughput only, required there), "window_days": 30}``.

Latency: the share of requests that finish within ``threshold_ms``. A percentile objective is the
same thing said the other way round: "p99 under 300 ms" is ``objective 99, threshold_ms 300``.
Throughput: the share of minutes in which the endpoint served at least ``min_rps`` requests a second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

SLIS = ("availability", "latency", "throughput")
FIELDS = ("name", "service", "endpoint", "sli", "objective", "threshold_ms", "min_rps", "window_days")
MAX_NAME, MAX_SERVICE, MAX_ENDPOINT = 255, 255, 512
MAX_WINDOW_DAYS = 90
MAX_THRESHOLD_MS = 86_400_000.0  # a day
MAX_RPS = 1_000_000.0


class SpecError(ValueError):
    """A body the API refuses: ``field`` names what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Spec:
    name: str
    service: str
    endpoint: str  # "" for the whole service
    sli: str
    objective: float
    threshold_ms: float | None
    min_rps: float | None
    window_days: int

    def as_dict(self) -> dict:
        return asdict(self)


def text(body: Mapping, field: str, limit: int, required: bool) -> str:
    value = body.get(field)
    if value is None or value == "":
        if required:
            raise SpecError(field, "is required (a non-empty string)")
        return ""
    if not isinstance(value, str):
        raise SpecError(field, "must be a string")
    if len(value) > limit:
        raise SpecError(field, f"must be at most {limit} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise SpecError(field, "must not contain control characters")
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate: no database column holds it
        raise SpecError(field, "must be valid Unicode") from None
    return value


def number(body: Mapping, field: str, low: float, high: float) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(field, "must be a number")
    if not low < value <= high:
        raise SpecError(field, f"must be above {low:g} and at most {high:g}")
    return float(value)


def check(body: object) -> Spec:
    """The checked SLO, or SpecError for the first wrong field (unknown fields are wrong too)."""
    if not isinstance(body, Mapping):
        raise SpecError("body", 'must be a JSON object like {"name": ..., "service": ..., "sli": ...}')
    unknown = sorted(str(k) for k in body if k not in FIELDS)
    if unknown:
        raise SpecError(unknown[0], f"unknown field (known: {', '.join(FIELDS)})")
    name = text(body, "name", MAX_NAME, True)
    service = text(body, "service", MAX_SERVICE, True)
    endpoint = text(body, "endpoint", MAX_ENDPOINT, False)
    sli = body.get("sli")
    if sli not in SLIS:
        raise SpecError("sli", f"must be one of {', '.join(SLIS)}")
    objective = body.get("objective")
    if isinstance(objective, bool) or not isinstance(objective, int | float) or not math.isfinite(objective):
        raise SpecError("objective", "is required: a number of percent, above 0 and below 100")
    if not 0 < objective < 100:
        raise SpecError("objective", "must be above 0 and below 100 (percent)")
    threshold = number(body, "threshold_ms", 0, MAX_THRESHOLD_MS)
    min_rps = number(body, "min_rps", 0, MAX_RPS)
    _only_for(sli, "latency", "threshold_ms", threshold)
    _only_for(sli, "throughput", "min_rps", min_rps)
    days = body.get("window_days", 30)
    if isinstance(days, float) and days.is_integer():  # 30.0 is a whole number (as JSON Schema says)
        days = int(days)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_WINDOW_DAYS:
        raise SpecError("window_days", f"must be a whole number of days from 1 to {MAX_WINDOW_DAYS}")
    return Spec(name, service, endpoint, sli, float(objective), threshold, min_rps, days)


def _only_for(sli: str, owner: str, field: str, value: float | None) -> None:
    if sli == owner and value is None:
        raise SpecError(field, f"is required for a {owner} SLO")
    if sli != owner and value is not None:
        raise SpecError(field, f"applies only to a {owner} SLO")
