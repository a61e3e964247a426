"""What mapping any OTLP record (a span, a log record) to a row shares: the result with its
rejects, string cleaning, attribute values and the service name. Pure logic (no Flask)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

UNKNOWN_SERVICE = "unknown_service"
_MAX_SERVICE = 255  # telemetry.models column sizes (PostgreSQL enforces them)


@dataclass
class Mapped:
    """The rows of one request, and what was rejected and why."""

    rows: list[tuple] = field(default_factory=list)
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    noun: str = "span"

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        why = "; ".join(f"{n} x {reason}" for reason, n in self.reasons.most_common())
        return f"{self.rejected} {self.noun}(s) rejected: {why}"


def clean(value: str | None, limit: int) -> str | None:
    if not value:
        return None
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        # Lone surrogates (possible from JSON escapes) cannot be stored as UTF-8.
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value[:limit] or None


def scalar(any_value):
    which = any_value.WhichOneof("value")
    if which == "string_value":
        return any_value.string_value
    if which == "int_value":
        return any_value.int_value
    if which == "double_value":
        return any_value.double_value
    if which == "bool_value":
        return any_value.bool_value
    return None


def service_name(resource) -> str:
    for kv in resource.attributes:
        if kv.key == "service.name":
            name = scalar(kv.value)
            if name not in (None, ""):
                return clean(str(name), _MAX_SERVICE) or UNKNOWN_SERVICE
    return UNKNOWN_SERVICE
