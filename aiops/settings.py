"""Every setting, defined once: name, type, default, environment variable and meaning.

:class:`Settings` is a frozen dataclass built once by ``create_app`` (from the
defaults, then the ``AIOPS_*`` environment, or the test configuration that
replaces it) and handed to whatever needs it. Nothing else restates a default;
``docs/configuration.md`` is generated from these fields (:func:`reference`),
and a test fails when the two drift apart.

Why a dataclass and not pydantic-settings: the values are few and flat, the
parsing rules are ours (``1e3`` is not a count, ``true`` is not a number), and
the standard library keeps the dependency list short. Errors name the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app

from aiops.kinds import IncidentKind, Severity
from telemetry import SETTINGS_EXTENSION as EXTENSION

# --- parsers: environment text -> typed value (ValueError says what is wrong) ---------------------


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("must be a positive number of seconds")
    return number


def _non_negative(value: str) -> float:
    number = float(value)
    if not number >= 0:
        raise ValueError("must be zero or a positive number")
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


def _text(value: str) -> str | None:
    """A string setting, stripped; blank means unset."""
    return value.strip() or None


def _recorder(value: str) -> str:
    value = value.strip()
    if value not in ("lean", "otel"):
        raise ValueError(f"AIOPS_RECORDER must be 'lean' or 'otel', not {value!r}")
    return value


DEFAULT_RATE_LIMITS = {Severity.CRITICAL: 0.0, Severity.HIGH: 300.0, Severity.MEDIUM: 900.0,
                       Severity.LOW: 3600.0}


def _rate_limits(value: str) -> dict[str, float]:
    """``"critical=0,high=300"`` -> seconds between notifications per severity (others keep defaults)."""
    limits = {str(k): v for k, v in DEFAULT_RATE_LIMITS.items()}
    names = [s.value for s in Severity]
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, sep, seconds = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in names:
            raise ValueError(f"expected severity=seconds with a severity in {', '.join(names)}")
        limits[name] = _non_negative(seconds)
    return limits


def setting(default: Any, env: str, doc: str, section: str, parse: Callable[[str], Any] = str,
            shown: str | None = None) -> Any:
    """A dataclass field that knows its variable, parser and meaning.

    ``shown`` is the default as the docs print it, when the value itself says
    too little (``None`` meaning "derived from another setting").
    """
    factory = (lambda: dict(default)) if isinstance(default, dict) else None
    meta = {"env": env, "doc": doc, "section": section, "parse": parse, "shown": shown}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# Sections of the generated reference, in order.
S, D, INC, N, R, X, OTLP, DEMO, SRV = (
    "Storage and recording", "Detection", "Incidents", "Notifications", "Remediation hooks", "Security",
    "OTLP ingest and replay", "Demo", "Serving",
)


@dataclass(frozen=True)
class Settings:
    # Storage and recording
    database_url: str | None = setting(
        None, "AIOPS_DATABASE_URL", "SQLAlchemy URL; `postgresql+psycopg://user@host/db` works too", S,
        _text, shown="`sqlite:///` file `instance/aiops.db`")
    retention_hours: float = setting(
        24.0, "AIOPS_RETENTION_HOURS", "spans and log records older than this are pruned (in batches, "
        "by the worker)", S,
        _positive)
    record_requests: bool = setting(True, "AIOPS_RECORD_REQUESTS", "`0` turns request recording off", S,
        _bool)
    recorder: str = setting(
        "lean", "AIOPS_RECORDER", "`lean` (WSGI middleware on the OpenTelemetry API) or `otel` "
        "(the official Flask instrumentation)", S, _recorder)
    service_name: str = setting("shop", "AIOPS_SERVICE_NAME", "service name of this app's own spans", S)
    flush_interval: float = setting(0.2, "AIOPS_FLUSH_INTERVAL", "seconds between span-buffer writes", S,
                                    _positive)
    buffer_max: int = setting(100_000, "AIOPS_BUFFER_MAX", "spans a web worker may hold unwritten before it "
                              "drops (and counts) new ones", S, _count)
    ignore_services: tuple[str, ...] = setting(
        ("aiops",), "AIOPS_IGNORE_SERVICES", "services never analysed (this product's own routes are "
        "recorded as `aiops`)", S, _names)

    # Detection
    detection_interval: float = setting(30.0, "AIOPS_DETECTION_INTERVAL",
                                        "seconds between detection cycles", D, _positive)
    scheduler: bool = setting(
        True, "AIOPS_SCHEDULER", "`0`: the worker (or `python app.py`) runs no periodic cycles, only those "
        "asked for by `POST /aiops/analyze` or `flask aiops analyze`; web workers never schedule", D, _bool)
    cycle_lease: float | None = setting(
        None, "AIOPS_CYCLE_LEASE", "seconds a started cycle holds its claim; if its process dies, detection "
        "resumes elsewhere after this. Keep it above your longest cycle", D, _positive,
        shown="max(60, 4 × interval)")
    ewma_alpha: float = setting(0.1, "AIOPS_EWMA_ALPHA", "weight of the newest normal window in the baseline",
                                D, float)
    min_baseline_samples: int = setting(20, "AIOPS_MIN_BASELINE_SAMPLES",
                                        "requests a baseline needs before latency verdicts", D, _count)
    latency_factor: float = setting(3.0, "AIOPS_LATENCY_FACTOR",
                                    "latency anomaly: window mean above this × baseline ...", D, _positive)
    latency_min_delta_ms: float = setting(50.0, "AIOPS_LATENCY_MIN_DELTA_MS",
                                          "... and at least this many ms above it", D, _non_negative)
    error_rate_threshold: float = setting(0.2, "AIOPS_ERROR_RATE_THRESHOLD",
                                          "error anomaly: 5xx/error share above this ...", D, float)
    min_window_requests: int = setting(5, "AIOPS_MIN_WINDOW_REQUESTS",
                                       "... with at least this many requests in the window", D, _count)
    min_slow_requests: int = setting(3, "AIOPS_MIN_SLOW_REQUESTS",
                                     "requests (latency) or timed-out calls (timeout) a verdict needs", D,
                                         _count)
    rebaseline_after: float = setting(
        3600.0, "AIOPS_REBASELINE_AFTER", "seconds of silence (no spans at all, on the data's clock) after "
        "which the baselines are stale and are learned anew ...", D, _positive)
    relearn_for: float = setting(
        30.0, "AIOPS_RELEARN_FOR", "... for this many seconds of data, while nothing is raised", D,
            _non_negative)
    metrics_window: float = setting(300.0, "AIOPS_METRICS_WINDOW",
                                    "seconds covered by `/aiops/metrics` and the dashboard", D, _positive)

    # Incidents
    correlation_window: float = setting(300.0, "AIOPS_CORRELATION_WINDOW",
                                        "seconds within which anomalies join an open incident", INC,
                                            _positive)
    resolve_after_cycles: int = setting(3, "AIOPS_RESOLVE_AFTER_CYCLES",
                                        "clean cycles before an incident resolves itself", INC, _count)
    notify_after_cycles: int = setting(2, "AIOPS_NOTIFY_AFTER_CYCLES", "cycles an incident must be seen in "
                                       "before it notifies (flap suppression)", INC, _count)
    reopen_cooldown: float = setting(1800.0, "AIOPS_REOPEN_COOLDOWN", "seconds after a resolve within which "
                                     "the same root cause reopens the incident", INC, _non_negative)
    escalate_after: float = setting(3600.0, "AIOPS_ESCALATE_AFTER", "severity rises a step for every this "
                                    "many seconds an incident stays open", INC, _positive)
    escalate_reopens: int = setting(2, "AIOPS_ESCALATE_REOPENS",
                                    "severity rises a step for every this many recurrences", INC, _count)
    max_new_incidents: int = setting(10, "AIOPS_MAX_NEW_INCIDENTS", "new incidents one detection cycle may "
                                     "open; more new root causes go into one \"incident storm\" incident",
                                         INC,
                                     _count)

    # Notifications
    notifications: bool = setting(True, "AIOPS_NOTIFICATIONS", "`0` turns off every outbound call "
                                  "(notifications and hooks); replay always does", N, _bool)
    webhook_url: str | None = setting(None, "AIOPS_WEBHOOK_URL", "generic JSON webhook", N, _text)
    slack_webhook_url: str | None = setting(None, "AIOPS_SLACK_WEBHOOK_URL", "Slack incoming webhook", N,
        _text)
    pagerduty_routing_key: str | None = setting(None, "AIOPS_PAGERDUTY_ROUTING_KEY",
                                                "PagerDuty Events API v2 routing (integration) key", N, _text)
    pagerduty_url: str = setting("https://events.pagerduty.com/v2/enqueue", "AIOPS_PAGERDUTY_URL",
                                 "Events API v2 endpoint", N)
    public_url: str | None = setting(None, "AIOPS_PUBLIC_URL", "this service's URL, for links in "
                                     "notifications", N, _text)
    notify_rate_limits: dict = setting(
        {str(k): v for k, v in DEFAULT_RATE_LIMITS.items()}, "AIOPS_NOTIFY_RATE_LIMITS",
        "seconds between trigger/update messages for one incident, per severity", N, _rate_limits,
        shown="`critical=0,high=300,medium=900,low=3600`")
    notify_poll: float = setting(1.0, "AIOPS_NOTIFY_POLL", "seconds between outbox delivery passes", N,
                                 _positive)
    notify_timeout: float = setting(5.0, "AIOPS_NOTIFY_TIMEOUT", "seconds one HTTP send may take", N,
        _positive)
    notify_backoff: float = setting(2.0, "AIOPS_NOTIFY_BACKOFF", "first retry delay (jittered, doubling)", N,
                                    _positive)
    notify_backoff_max: float = setting(300.0, "AIOPS_NOTIFY_BACKOFF_MAX", "longest retry delay", N,
        _positive)
    notify_max_attempts: int = setting(10, "AIOPS_NOTIFY_MAX_ATTEMPTS", "attempts before a message is "
                                       "`failed`", N, _count)
    notify_lease: float | None = setting(None, "AIOPS_NOTIFY_LEASE", "seconds a claimed message is one "
                                         "sender's", N, _positive, shown="max(60, 4 × timeout)")
    breaker_threshold: int = setting(5, "AIOPS_BREAKER_THRESHOLD", "retryable failures in a row that open "
                                     "a channel's breaker ...", N, _count)
    breaker_cooldown: float = setting(60.0, "AIOPS_BREAKER_COOLDOWN", "... and for how many seconds", N,
                                      _positive)

    # Remediation hooks, one per incident kind (see IncidentKind)
    remediation_latency_url: str | None = setting(None, "AIOPS_REMEDIATION_LATENCY_URL",
                                                  "hook called for a confirmed latency incident", R, _text)
    remediation_errors_url: str | None = setting(None, "AIOPS_REMEDIATION_ERRORS_URL",
                                                 "hook called for a confirmed errors incident", R, _text)
    remediation_timeout_url: str | None = setting(None, "AIOPS_REMEDIATION_TIMEOUT_URL",
                                                  "hook called for a confirmed timeout incident", R, _text)
    remediation_cascading_url: str | None = setting(None, "AIOPS_REMEDIATION_CASCADING_URL",
                                                    "hook called for a confirmed cascading incident", R,
                                                        _text)
    remediation_token: str | None = setting(None, "AIOPS_REMEDIATION_TOKEN",
                                            "bearer token sent to remediation hooks", R, _text)

    # Security
    api_token: str | None = setting(
        None, "AIOPS_API_TOKEN", "when set, mutating `/aiops/*` and `/simulate/*` calls need it "
        "([accepted forms](security.md#tokens)); it also guards `/v1/*` unless `AIOPS_INGEST_TOKEN` is set",
        X, _text)
    ingest_token: str | None = setting(
        None, "AIOPS_INGEST_TOKEN", "token `POST /v1/traces` and `POST /v1/logs` need "
        "([accepted forms](security.md#tokens))", X, _text, shown="the API token, else open")
    trusted_hosts: tuple[str, ...] = setting(
        ("127.0.0.1", "localhost", "::1"), "AIOPS_TRUSTED_HOSTS", "host names this server answers for "
        "(`Host`); others get 400. `.example.com` trusts its subdomains, `*` any host", X, _names)
    protect_reads: bool = setting(False, "AIOPS_PROTECT_READS", "`1` puts every read behind "
                                  "`AIOPS_API_TOKEN` too; `/health` stays open", X, _bool)
    max_body_bytes: int = setting(1024 * 1024, "AIOPS_MAX_BODY_BYTES",
                                  "largest request body for every route but `/v1/*` (413 above)", X, _count)
    api_max_body_bytes: int = setting(64 * 1024, "AIOPS_API_MAX_BODY_BYTES", "largest request body for "
                                      "`/aiops/*`, `/simulate/*` and the page forms", X, _count)

    # OTLP ingest
    otlp_max_bytes: int = setting(8 * 1024 * 1024, "AIOPS_OTLP_MAX_BYTES", "largest `/v1/*` body, counted "
                                  "after decompression (413 above)", OTLP, _count)
    otlp_max_spans: int = setting(50_000, "AIOPS_OTLP_MAX_SPANS", "spans in one request (413 above, checked "
                                  "before decoding)", OTLP, _count)
    otlp_max_log_records: int = setting(50_000, "AIOPS_OTLP_MAX_LOG_RECORDS", "log records in one "
                                        "`/v1/logs` request (413 above, checked before decoding)", OTLP,
                                        _count)
    log_body_max: int = setting(8 * 1024, "AIOPS_LOG_BODY_MAX", "characters of a log record's body that "
                                "are stored (the rest is cut)", OTLP, _count)
    otlp_max_items: int = setting(500_000, "AIOPS_OTLP_MAX_ITEMS",
        "decoded items (spans, attributes, events, "
                                  "links, nested values) in one request (413 above)", OTLP, _count)
    otlp_max_attributes: int = setting(1_000, "AIOPS_OTLP_MAX_ATTRIBUTES", "attributes per span; a span over "
                                       "it is rejected alone (partial success)", OTLP, _count)
    otlp_max_events: int = setting(1_000, "AIOPS_OTLP_MAX_EVENTS", "events per span; a span over it is "
                                   "rejected alone", OTLP, _count)
    otlp_inflight_bytes: int = setting(256 * 1024 * 1024, "AIOPS_OTLP_INFLIGHT_BYTES", "bytes one process "
                                       "may decode at once; a request over it gets a retryable 503", OTLP,
                                           _count)
    otlp_max_age: float = setting(7 * 86400.0, "AIOPS_OTLP_MAX_AGE", "seconds a live span may start before "
                                  "now (not applied by replay)", OTLP, _positive)
    otlp_max_ahead: float = setting(3600.0, "AIOPS_OTLP_MAX_AHEAD", "seconds a live span may start after now",
                                    OTLP, _positive)
    otlp_max_duration: float = setting(86400.0, "AIOPS_OTLP_MAX_DURATION", "seconds a live span may last",
        OTLP,
                                       _positive)
    replay_max_pending: int = setting(500_000, "AIOPS_REPLAY_MAX_PENDING", "spans `flask aiops replay` holds "
                                      "to put a file in time order", OTLP, _count)

    # Demo
    enable_simulation: bool = setting(
        False, "AIOPS_ENABLE_SIMULATION", "enables the demo shop (`/checkout`, `/payment`, `/inventory`) and "
        "`/simulate/*`; off, those routes do not exist", DEMO, _bool, shown="off (`1` for `python app.py`)")
    demo_timeout: float = setting(5.0, "AIOPS_DEMO_TIMEOUT", "seconds the demo's checkout waits for payment "
                                  "and inventory", DEMO, _positive)
    demo_base_url: str | None = setting(None, "AIOPS_DEMO_BASE_URL", "where checkout calls payment and "
                                        "inventory; never the request's `Host`", DEMO, _text,
                                        shown="this server's own socket address")
    demo_work: float = setting(1.0, "AIOPS_DEMO_WORK", "scales the demo endpoints' simulated work; `0` turns "
                               "it off", DEMO, _non_negative)

    # Serving (read by `python app.py` and gunicorn.conf.py)
    port: int = setting(5000, "PORT", "port for `python app.py` (gunicorn: 8000)", SRV, _count)
    host: str = setting("127.0.0.1", "HOST", "address `python app.py` listens on", SRV)
    bind: str | None = setting(None, "AIOPS_BIND", "gunicorn's bind address", SRV, _text,
                               shown="`127.0.0.1:$PORT` (8000)")
    threads: int = setting(16, "AIOPS_THREADS", "threads per gunicorn worker", SRV, _count)

    def __post_init__(self):
        # Typed values (a test configuration) skip the parsers; the choices still hold.
        _recorder(self.recorder)

    # --- derived values -------------------------------------------------------------------------

    @property
    def cycle_lease_seconds(self) -> float:
        """How long a claimed cycle is its process's: the setting, else max(60 s, 4 intervals).

        It must outlast the longest cycle, or a second process could start one
        while the first still runs; it is also how long detection pauses when
        the process running a cycle dies.
        """
        return self.cycle_lease or max(60.0, 4 * self.detection_interval)

    @property
    def notify_lease_seconds(self) -> float:
        """A claim must outlast one send (connect + read timeouts, and then some)."""
        return self.notify_lease or max(60.0, 4 * self.notify_timeout)

    @property
    def ingest_token_required(self) -> str | None:
        """The token ``/v1/*`` requires: the ingest token, else the API token, else none (open)."""
        return self.ingest_token or self.api_token

    def text(self, name: str) -> str | None:
        """A string setting, stripped; unset and blank both mean None."""
        value = getattr(self, name)
        return (str(value).strip() or None) if value is not None else None

    def remediation_url(self, kind: str) -> str | None:
        """The hook URL of an incident kind, None when unset or the kind is unknown."""
        return self.text(remediation_field(kind)) if kind in set(IncidentKind) else None

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    # --- building ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None,
             ) -> Settings:
        """Defaults, then ``environ`` (text, parsed), then ``overrides`` (typed values).

        Both may name a setting by its variable (``AIOPS_DETECTION_INTERVAL``)
        or its field (``detection_interval``). A bad value raises ValueError
        naming the variable.
        """
        values: dict[str, Any] = {}
        by_env = {f.metadata["env"]: f for f in fields(cls)}
        for name, raw in (environ or {}).items():
            f = by_env.get(name)
            if f is None or raw is None or raw == "":
                continue
            try:
                values[f.name] = f.metadata["parse"](str(raw))
            except ValueError as exc:
                raise ValueError(f"{name}={raw!r} is not valid: {exc}") from None
        by_name = {f.name: f for f in fields(cls)}
        for key, value in (overrides or {}).items():
            f = by_env.get(key) or by_name.get(key)
            if f is not None:
                values[f.name] = value
        return cls(**values)

    @classmethod
    def from_env(cls, overrides: Mapping[str, Any] | None = None) -> Settings:
        return cls.load(os.environ, overrides)


def remediation_field(kind: str) -> str:
    """``latency`` -> ``remediation_latency_url``: the hook setting of an incident kind."""
    return f"remediation_{kind}_url"


def env_name(name: str) -> str:
    """The variable of a field: ``webhook_url`` -> ``AIOPS_WEBHOOK_URL`` (for messages that name it)."""
    return next(f.metadata["env"] for f in fields(Settings) if f.name == name)


def is_setting(key: str) -> bool:
    """Whether a configuration key names a setting (by variable or field name)."""
    return any(key in (f.metadata["env"], f.name) for f in fields(Settings))


def install(app: Flask, settings: Settings) -> None:
    """Make ``settings`` the app's (``create_app`` does it; tests use it to reconfigure an app)."""
    app.extensions[EXTENSION] = settings


def settings_of(app: Flask) -> Settings:
    return app.extensions[EXTENSION]


def current_settings() -> Settings:
    """The settings of the app handling this request or command."""
    return current_app.extensions[EXTENSION]


def reconfigure(app: Flask, **changes: Any) -> Settings:
    """Replace some values of a running app's settings (field names); returns the new settings."""
    updated = settings_of(app).replace(**changes)
    install(app, updated)
    return updated


# --- docs --------------------------------------------------------------------------------------------


def _shown(f: dataclasses.Field) -> str:
    if f.metadata["shown"]:
        return f.metadata["shown"]
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return "`1`" if default else "`0`"
    if isinstance(default, tuple):
        return "`" + ",".join(default) + "`"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"


def _sections() -> Iterator[tuple[str, list[dataclasses.Field]]]:
    order: dict[str, list[dataclasses.Field]] = {}
    for f in fields(Settings):
        order.setdefault(f.metadata["section"], []).append(f)
    yield from order.items()


def reference() -> str:
    """``docs/configuration.md``: every setting, its default and meaning, by section."""
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from aiops/settings.py by `python -m aiops.settings > docs/configuration.md`;"
        " do not edit. -->",
        "",
        "Every setting is an environment variable, read once when the app is created",
        "(`create_app`). A bad value stops the start with an error naming the variable.",
        "Tests pass a configuration to `create_app`, which then replaces the environment.",
        "",
    ]
    for section, members in _sections():
        lines += [f"## {section}", "", "| variable | default | meaning |", "| --- | --- | --- |"]
        lines += [f"| `{f.metadata['env']}` | {_shown(f)} | {f.metadata['doc']} |" for f in members]
        lines.append("")
    lines += [
        "Not settings of the app, but read by its processes:",
        "",
        "| variable | meaning |",
        "| --- | --- |",
        "| `PROMETHEUS_MULTIPROC_DIR` | where gunicorn's workers keep the values `GET /metrics` adds up "
        "(a temporary directory per server by default) |",
        "",
    ]
    return "\n".join(lines)


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


if __name__ == "__main__":  # python -m aiops.settings > docs/configuration.md
    print(reference(), end="")
