"""Environment text -> typed value, one parser per kind of setting.

Each raises ValueError saying what is wrong; :meth:`Settings.load
<aiops.settings.fields.Settings.load>` adds the variable's name. The rules are
strict on purpose: ``1e3`` is not a count, ``true`` is not a number.
"""

from __future__ import annotations

from aiops.kinds import Severity


def boolean(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("must be a positive number of seconds")
    return number


def non_negative(value: str) -> float:
    number = float(value)
    if not number >= 0:
        raise ValueError("must be zero or a positive number")
    return number


def count(value: str) -> int:
    """A positive integer written plainly: ``1_000``, ``1e3`` and ``true`` are errors."""
    value = value.strip()
    if not value.isdigit() or not value.isascii() or int(value) <= 0:
        raise ValueError("must be a positive integer")
    return int(value)


def names(value: str) -> tuple[str, ...]:
    """``"aiops, batch"`` -> ``("aiops", "batch")``."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def text(value: str) -> str | None:
    """A string setting, stripped; blank means unset."""
    return value.strip() or None


def http_url(value: str) -> str | None:
    """An ``http://`` or ``https://`` URL with a host; blank means unset."""
    from urllib.parse import urlsplit

    value = value.strip()
    if not value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def recorder(value: str) -> str:
    value = value.strip()
    if value not in ("lean", "otel"):
        raise ValueError(f"AIOPS_RECORDER must be 'lean' or 'otel', not {value!r}")
    return value


def compression(value: str) -> str:
    value = value.strip().lower()
    if value not in ("none", "gzip", "deflate"):
        raise ValueError(f"must be none, gzip or deflate, not {value!r}")
    return value


def headers(value: str) -> dict[str, str]:
    """``"api-key=abc,x-tenant=shop"`` -> a dict, as ``OTEL_EXPORTER_OTLP_HEADERS`` is written
    (values may be percent-encoded)."""
    from urllib.parse import unquote

    found = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, sep, text = part.partition("=")
        if not sep or not name.strip():
            raise ValueError("expected name=value pairs separated by commas")
        found[unquote(name.strip()).lower()] = unquote(text.strip())
    return found


DEFAULT_RATE_LIMITS = {Severity.CRITICAL: 0.0, Severity.HIGH: 300.0, Severity.MEDIUM: 900.0,
                       Severity.LOW: 3600.0}


def rate_limits(value: str) -> dict[str, float]:
    """``"critical=0,high=300"`` -> seconds between notifications per severity (others keep defaults)."""
    limits = {str(k): v for k, v in DEFAULT_RATE_LIMITS.items()}
    severities = [s.value for s in Severity]
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, sep, seconds = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in severities:
            raise ValueError(f"expected severity=seconds with a severity in {', '.join(severities)}")
        limits[name] = non_negative(seconds)
    return limits
