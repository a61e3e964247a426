"""Configuration from ``AIOPS_*`` environment variables.

Read when ``create_app`` runs (never at import time) so tests and gunicorn
workers can set the environment first. Every value has a default that makes
``python app.py`` work with nothing set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("must be a positive number of seconds")
    return number


def _count(value: str) -> int:
    """A positive integer written plainly: ``1_000``, ``1e3`` and ``true`` are errors."""
    value = value.strip()
    if not value.isdigit() or not value.isascii() or int(value) <= 0:
        raise ValueError("must be a positive integer")
    return int(value)


def _names(value: str) -> tuple[str, ...]:
    """``"aiops, batch"`` -> ``("aiops", "batch")``."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


SEVERITY_NAMES = ("critical", "high", "medium", "low")


def _rate_limits(value: str) -> dict[str, float]:
    """``"critical=0,high=300"`` -> seconds between notifications per severity (others keep defaults)."""
    limits = dict(DEFAULT_RATE_LIMITS)
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, sep, seconds = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in SEVERITY_NAMES:
            raise ValueError(f"expected severity=seconds with a severity in {', '.join(SEVERITY_NAMES)}")
        number = float(seconds)
        if number < 0:
            raise ValueError("seconds must not be negative")
        limits[name] = number
    return limits


DEFAULT_RATE_LIMITS = {"critical": 0.0, "high": 300.0, "medium": 900.0, "low": 3600.0}
INCIDENT_KINDS = ("latency", "errors", "timeout", "cascading")


def masked_url(url: str | None) -> str:
    """A URL safe to print: its password, query and fragment replaced by ``***``.

    ``postgresql+psycopg://aiops:pw@db:5432/aiops`` -> ``postgresql+psycopg://aiops:***@db:5432/aiops``.
    Anything unparsable is masked whole.
    """
    if not url:
        return str(url)
    text = str(url)
    head, hashmark, _ = text.partition("#")
    head, question, _ = head.partition("?")
    tail = ("?***" if question else "") + ("#***" if hashmark else "")
    try:
        netloc = urlsplit(head).netloc
    except ValueError:
        return "***"
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        head = head.replace(netloc, f"{user}:***@{hostport}" if colon else f"***@{hostport}", 1)
    return head + tail


def remediation_key(kind: str) -> str:
    """``latency`` -> ``AIOPS_REMEDIATION_LATENCY_URL``: the hook setting of an incident kind."""
    return f"AIOPS_REMEDIATION_{kind.upper()}_URL"

# name -> (config key, parser, default)
_SETTINGS: dict[str, tuple[str, Callable[[str], Any], Any]] = {
    "AIOPS_DATABASE_URL": ("SQLALCHEMY_DATABASE_URI", str, None),
    "AIOPS_DETECTION_INTERVAL": ("AIOPS_DETECTION_INTERVAL", float, 30.0),
    # Seconds a claimed cycle may run before another process may take over (None: max(60, 4 x interval)).
    "AIOPS_CYCLE_LEASE": ("AIOPS_CYCLE_LEASE", _positive, None),
    "AIOPS_ENABLE_SIMULATION": ("AIOPS_ENABLE_SIMULATION", _bool, False),
    "AIOPS_API_TOKEN": ("AIOPS_API_TOKEN", str, None),
    "AIOPS_RECORD_REQUESTS": ("AIOPS_RECORD_REQUESTS", _bool, True),
    "AIOPS_RECORDER": ("AIOPS_RECORDER", str, "lean"),
    "AIOPS_SERVICE_NAME": ("AIOPS_SERVICE_NAME", str, "shop"),
    "AIOPS_SCHEDULER": ("AIOPS_SCHEDULER", _bool, True),
    "AIOPS_FLUSH_INTERVAL": ("AIOPS_FLUSH_INTERVAL", float, 0.2),
    "AIOPS_BUFFER_MAX": ("AIOPS_BUFFER_MAX", int, 100_000),
    "AIOPS_EWMA_ALPHA": ("AIOPS_EWMA_ALPHA", float, 0.1),
    "AIOPS_MIN_BASELINE_SAMPLES": ("AIOPS_MIN_BASELINE_SAMPLES", int, 20),
    "AIOPS_LATENCY_FACTOR": ("AIOPS_LATENCY_FACTOR", float, 3.0),
    "AIOPS_LATENCY_MIN_DELTA_MS": ("AIOPS_LATENCY_MIN_DELTA_MS", float, 50.0),
    "AIOPS_ERROR_RATE_THRESHOLD": ("AIOPS_ERROR_RATE_THRESHOLD", float, 0.2),
    "AIOPS_MIN_WINDOW_REQUESTS": ("AIOPS_MIN_WINDOW_REQUESTS", int, 5),
    "AIOPS_MIN_SLOW_REQUESTS": ("AIOPS_MIN_SLOW_REQUESTS", int, 3),
    "AIOPS_CORRELATION_WINDOW": ("AIOPS_CORRELATION_WINDOW", float, 300.0),
    "AIOPS_RESOLVE_AFTER_CYCLES": ("AIOPS_RESOLVE_AFTER_CYCLES", int, 3),
    # Seconds of silence (no spans at all, on the data's clock) after which the baselines are
    # stale: they are learned anew, raising nothing, for AIOPS_RELEARN_FOR seconds of data.
    "AIOPS_REBASELINE_AFTER": ("AIOPS_REBASELINE_AFTER", _positive, 3600.0),
    "AIOPS_RELEARN_FOR": ("AIOPS_RELEARN_FOR", float, 30.0),
    # Lifecycle: cycles an anomaly must persist before it notifies (flap suppression),
    # the cooldown within which a recurrence reopens the resolved incident, and when
    # severity escalates (open this long; every N recurrences).
    "AIOPS_NOTIFY_AFTER_CYCLES": ("AIOPS_NOTIFY_AFTER_CYCLES", int, 2),
    "AIOPS_REOPEN_COOLDOWN": ("AIOPS_REOPEN_COOLDOWN", float, 1800.0),
    "AIOPS_ESCALATE_AFTER": ("AIOPS_ESCALATE_AFTER", _positive, 3600.0),
    "AIOPS_ESCALATE_REOPENS": ("AIOPS_ESCALATE_REOPENS", int, 2),
    "AIOPS_RETENTION_HOURS": ("AIOPS_RETENTION_HOURS", float, 24.0),
    "AIOPS_METRICS_WINDOW": ("AIOPS_METRICS_WINDOW", float, 300.0),
    "AIOPS_IGNORE_SERVICES": ("AIOPS_IGNORE_SERVICES", _names, ("aiops",)),
    "AIOPS_OTLP_MAX_BYTES": ("AIOPS_OTLP_MAX_BYTES", _count, 8 * 1024 * 1024),
    # Exposure: see the README's Security section.
    "AIOPS_INGEST_TOKEN": ("AIOPS_INGEST_TOKEN", str, None),
    "AIOPS_TRUSTED_HOSTS": ("AIOPS_TRUSTED_HOSTS", _names, ("127.0.0.1", "localhost", "::1")),
    "AIOPS_PROTECT_READS": ("AIOPS_PROTECT_READS", _bool, False),
    "AIOPS_MAX_BODY_BYTES": ("AIOPS_MAX_BODY_BYTES", _count, 1024 * 1024),
    "AIOPS_API_MAX_BODY_BYTES": ("AIOPS_API_MAX_BODY_BYTES", _count, 64 * 1024),
    "AIOPS_MAX_NEW_INCIDENTS": ("AIOPS_MAX_NEW_INCIDENTS", _count, 10),
    # OTLP decoding limits (per request) and the bytes all requests of a process may decode at once.
    "AIOPS_OTLP_MAX_SPANS": ("AIOPS_OTLP_MAX_SPANS", _count, 50_000),
    "AIOPS_OTLP_MAX_ATTRIBUTES": ("AIOPS_OTLP_MAX_ATTRIBUTES", _count, 1_000),
    "AIOPS_OTLP_MAX_EVENTS": ("AIOPS_OTLP_MAX_EVENTS", _count, 1_000),
    "AIOPS_OTLP_MAX_ITEMS": ("AIOPS_OTLP_MAX_ITEMS", _count, 500_000),
    "AIOPS_OTLP_INFLIGHT_BYTES": ("AIOPS_OTLP_INFLIGHT_BYTES", _count, 256 * 1024 * 1024),
    # Live ingest only (replay keeps its data's own clock): seconds a span may start before
    # or after now, and the longest duration it may have.
    "AIOPS_OTLP_MAX_AGE": ("AIOPS_OTLP_MAX_AGE", _positive, 7 * 86400.0),
    "AIOPS_OTLP_MAX_AHEAD": ("AIOPS_OTLP_MAX_AHEAD", _positive, 3600.0),
    "AIOPS_OTLP_MAX_DURATION": ("AIOPS_OTLP_MAX_DURATION", _positive, 86400.0),
    "AIOPS_REPLAY_MAX_PENDING": ("AIOPS_REPLAY_MAX_PENDING", int, 500_000),
    "AIOPS_DEMO_TIMEOUT": ("AIOPS_DEMO_TIMEOUT", float, 5.0),
    "AIOPS_DEMO_BASE_URL": ("AIOPS_DEMO_BASE_URL", str, None),
    "AIOPS_DEMO_WORK": ("AIOPS_DEMO_WORK", float, 1.0),
    "AIOPS_WEBHOOK_URL": ("AIOPS_WEBHOOK_URL", str, None),
    "AIOPS_SLACK_WEBHOOK_URL": ("AIOPS_SLACK_WEBHOOK_URL", str, None),
    "AIOPS_PAGERDUTY_ROUTING_KEY": ("AIOPS_PAGERDUTY_ROUTING_KEY", str, None),
    "AIOPS_PAGERDUTY_URL": (
        "AIOPS_PAGERDUTY_URL",
        str,
        "https://events.pagerduty.com/v2/enqueue",
    ),
    # Outbound calls (notifications and remediation hooks); replay turns them off.
    "AIOPS_NOTIFICATIONS": ("AIOPS_NOTIFICATIONS", _bool, True),
    "AIOPS_PUBLIC_URL": ("AIOPS_PUBLIC_URL", str, None),
    "AIOPS_NOTIFY_RATE_LIMITS": ("AIOPS_NOTIFY_RATE_LIMITS", _rate_limits, dict(DEFAULT_RATE_LIMITS)),
    "AIOPS_NOTIFY_POLL": ("AIOPS_NOTIFY_POLL", _positive, 1.0),
    "AIOPS_NOTIFY_TIMEOUT": ("AIOPS_NOTIFY_TIMEOUT", _positive, 5.0),
    "AIOPS_NOTIFY_BACKOFF": ("AIOPS_NOTIFY_BACKOFF", _positive, 2.0),
    "AIOPS_NOTIFY_BACKOFF_MAX": ("AIOPS_NOTIFY_BACKOFF_MAX", _positive, 300.0),
    "AIOPS_NOTIFY_MAX_ATTEMPTS": ("AIOPS_NOTIFY_MAX_ATTEMPTS", int, 10),
    "AIOPS_BREAKER_THRESHOLD": ("AIOPS_BREAKER_THRESHOLD", int, 5),
    "AIOPS_BREAKER_COOLDOWN": ("AIOPS_BREAKER_COOLDOWN", _positive, 60.0),
    # Seconds a claimed message is one sender's (None: max(60, 4 x AIOPS_NOTIFY_TIMEOUT)).
    "AIOPS_NOTIFY_LEASE": ("AIOPS_NOTIFY_LEASE", _positive, None),
    # Remediation hooks, off unless a URL is set: one per incident kind.
    **{remediation_key(kind): (remediation_key(kind), str, None) for kind in INCIDENT_KINDS},
    "AIOPS_REMEDIATION_TOKEN": ("AIOPS_REMEDIATION_TOKEN", str, None),
}


def defaults() -> dict[str, Any]:
    """Every setting at its default value (the database URL is filled in by the app)."""
    return {key: (dict(default) if isinstance(default, dict) else default)
            for key, _, default in _SETTINGS.values()}


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse the ``AIOPS_*`` variables that are set; raise ValueError naming a bad one."""
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for name, (key, parse, _default) in _SETTINGS.items():
        raw = environ.get(name)
        if raw is None or raw == "":
            continue
        try:
            config[key] = parse(raw)
        except ValueError as exc:
            raise ValueError(f"{name}={raw!r} is not valid: {exc}") from None
    return config
