"""The settings themselves: every one defined once, with its default, variable, parser and meaning.

:class:`Settings` is a frozen dataclass built once by ``create_app`` (from the
defaults, then the ``AIOPS_*`` environment, or the test configuration that
replaces it) and handed to whatever needs it. Each field carries its variable,
parser, meaning and section as metadata: :meth:`Settings.load` reads them, and
``docs/configuration.md`` is generated from them (:mod:`aiops.settings.docs`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from aiops.kinds import IncidentKind
from aiops.settings import parse
from aiops.settings.declare import (
    DEMO,
    DETECTION,
    INCIDENTS,
    INGEST,
    NOTIFICATIONS,
    REMEDIATION,
    SECURITY,
    SERVING,
    STORAGE,
    setting,
)
from aiops.settings.export import ExportSettings
from aiops.settings.rules import RuleSettings
from aiops.settings.tempo import TempoSettings


@dataclass(frozen=True)
class Settings(RuleSettings, TempoSettings, ExportSettings):
    """Every setting; the export, Tempo source and rule ones are declared in
    :mod:`aiops.settings.export`, :mod:`aiops.settings.tempo` and :mod:`aiops.settings.rules` (inherited)."""

    # Storage and recording
    database_url: str | None = setting(
        None, "AIOPS_DATABASE_URL", "SQLAlchemy URL; `postgresql+psycopg://user@host/db` works too",
        STORAGE, parse.text, shown="`sqlite:///` file `instance/aiops.db`")
    retention_hours: float = setting(
        24.0, "AIOPS_RETENTION_HOURS", "spans, log records and metric points older than this are pruned "
        "(in batches, by the worker)", STORAGE, parse.positive)
    record_requests: bool = setting(
        True, "AIOPS_RECORD_REQUESTS", "`0` turns request recording off", STORAGE, parse.boolean)
    recorder: str = setting(
        "lean", "AIOPS_RECORDER", "`lean` (WSGI middleware on the OpenTelemetry API) or `otel` "
        "(the official Flask instrumentation)", STORAGE, parse.recorder)
    service_name: str = setting(
        "shop", "AIOPS_SERVICE_NAME", "service name of this app's own spans", STORAGE)
    flush_interval: float = setting(
        0.2, "AIOPS_FLUSH_INTERVAL", "seconds between span-buffer writes", STORAGE, parse.positive)
    buffer_max: int = setting(
        100_000, "AIOPS_BUFFER_MAX", "spans a web worker may hold unwritten before it drops (and counts) "
        "new ones", STORAGE, parse.count)
    ignore_services: tuple[str, ...] = setting(
        ("aiops",), "AIOPS_IGNORE_SERVICES", "services never analysed (this product's own routes are "
        "recorded as `aiops`)", STORAGE, parse.names)

    # Detection
    detection_interval: float = setting(
        30.0, "AIOPS_DETECTION_INTERVAL", "seconds between detection cycles", DETECTION, parse.positive)
    scheduler: bool = setting(
        True, "AIOPS_SCHEDULER", "`0`: the worker (or `python app.py`) runs no periodic cycles, only those "
        "asked for by `POST /aiops/analyze` or `flask aiops analyze`; web workers never schedule",
        DETECTION, parse.boolean)
    cycle_lease: float | None = setting(
        None, "AIOPS_CYCLE_LEASE", "seconds a started cycle holds its claim; if its process dies, detection "
        "resumes elsewhere after this. Keep it above your longest cycle", DETECTION, parse.positive,
        shown="max(60, 4 × interval)")
    ewma_alpha: float = setting(
        0.1, "AIOPS_EWMA_ALPHA", "weight of the newest normal window in the baseline", DETECTION, float)
    min_baseline_samples: int = setting(
        20, "AIOPS_MIN_BASELINE_SAMPLES", "requests a baseline needs before latency verdicts", DETECTION,
        parse.count)
    latency_factor: float = setting(
        3.0, "AIOPS_LATENCY_FACTOR", "latency anomaly: window mean above this × baseline ...", DETECTION,
        parse.positive)
    latency_min_delta_ms: float = setting(
        50.0, "AIOPS_LATENCY_MIN_DELTA_MS", "... and at least this many ms above it", DETECTION,
        parse.non_negative)
    error_rate_threshold: float = setting(
        0.2, "AIOPS_ERROR_RATE_THRESHOLD", "error anomaly: 5xx/error share above this ...", DETECTION, float)
    min_window_requests: int = setting(
        5, "AIOPS_MIN_WINDOW_REQUESTS", "... with at least this many requests in the window", DETECTION,
        parse.count)
    min_slow_requests: int = setting(
        3, "AIOPS_MIN_SLOW_REQUESTS",
        "slow requests, each over the latency line (latency), or timed-out calls (timeout) a verdict needs",
        DETECTION, parse.count)
    rebaseline_after: float = setting(
        3600.0, "AIOPS_REBASELINE_AFTER", "seconds of silence (no spans of an analysed service, on the "
        "data's clock) after which the baselines are stale and are learned anew ...", DETECTION,
        parse.positive)
    relearn_for: float = setting(
        30.0, "AIOPS_RELEARN_FOR", "... for this many seconds of data, while nothing is raised", DETECTION,
        parse.non_negative)
    slo_file: str | None = setting(
        None, "AIOPS_SLO_FILE", "JSON or TOML file of SLOs, upserted by name when a process first needs them "
        "([format](../README.md#slos))", DETECTION, parse.text)
    degradation_factor: float = setting(
        2.0, "AIOPS_DEGRADATION_FACTOR", "degradation: an endpoint's window mean at least this × its slow "
        "(long-term) baseline, while its fast baseline has absorbed the creep ...", DETECTION, parse.positive)
    degradation_min_delta_ms: float = setting(
        10.0, "AIOPS_DEGRADATION_MIN_DELTA_MS", "... and at least this many ms above it", DETECTION,
        parse.non_negative)
    slow_alpha: float = setting(
        0.01, "AIOPS_SLOW_ALPHA", "weight of the newest normal window in the slow (long-term) latency "
        "baseline that degradation is measured against", DETECTION, parse.positive)
    slow_min_windows: int = setting(
        20, "AIOPS_SLOW_MIN_WINDOWS", "windows the slow baselines (degradation, expected traffic) learn "
        "before they judge", DETECTION, parse.count)
    traffic_min_expected: float = setting(
        10.0, "AIOPS_TRAFFIC_MIN_EXPECTED", "traffic drop: an endpoint with no requests in a window where "
        "the rest of the system's traffic says it should have had at least this many (Poisson: "
        "P(0 | 10) ≈ 0.005 %)", DETECTION, parse.positive)
    metrics_window: float = setting(
        300.0, "AIOPS_METRICS_WINDOW", "seconds covered by `/aiops/metrics` and the dashboard", DETECTION,
        parse.positive)

    # Incidents
    correlation_window: float = setting(
        300.0, "AIOPS_CORRELATION_WINDOW", "seconds within which anomalies join an open incident",
        INCIDENTS, parse.positive)
    resolve_after_cycles: int = setting(
        3, "AIOPS_RESOLVE_AFTER_CYCLES", "clean cycles before an incident resolves itself", INCIDENTS,
        parse.count)
    notify_after_cycles: int = setting(
        2, "AIOPS_NOTIFY_AFTER_CYCLES", "cycles an incident must be seen in before it notifies (flap "
        "suppression)", INCIDENTS, parse.count)
    reopen_cooldown: float = setting(
        1800.0, "AIOPS_REOPEN_COOLDOWN", "seconds after a resolve within which the same root cause reopens "
        "the incident", INCIDENTS, parse.non_negative)
    escalate_after: float = setting(
        3600.0, "AIOPS_ESCALATE_AFTER", "severity rises a step for every this many seconds an incident "
        "stays open", INCIDENTS, parse.positive)
    escalate_reopens: int = setting(
        2, "AIOPS_ESCALATE_REOPENS", "severity rises a step for every this many recurrences", INCIDENTS,
        parse.count)
    max_new_incidents: int = setting(
        10, "AIOPS_MAX_NEW_INCIDENTS", "new incidents one detection cycle may open; more new root causes "
        "go into one \"incident storm\" incident", INCIDENTS, parse.count)

    # Notifications
    notifications: bool = setting(
        True, "AIOPS_NOTIFICATIONS", "`0` turns off every outbound call (notifications and hooks); replay "
        "always does", NOTIFICATIONS, parse.boolean)
    webhook_url: str | None = setting(
        None, "AIOPS_WEBHOOK_URL", "generic JSON webhook", NOTIFICATIONS, parse.text)
    slack_webhook_url: str | None = setting(
        None, "AIOPS_SLACK_WEBHOOK_URL", "Slack incoming webhook", NOTIFICATIONS, parse.text)
    pagerduty_routing_key: str | None = setting(
        None, "AIOPS_PAGERDUTY_ROUTING_KEY", "PagerDuty Events API v2 routing (integration) key",
        NOTIFICATIONS, parse.text)
    pagerduty_url: str = setting(
        "https://events.pagerduty.com/v2/enqueue", "AIOPS_PAGERDUTY_URL", "Events API v2 endpoint",
        NOTIFICATIONS)
    public_url: str | None = setting(
        None, "AIOPS_PUBLIC_URL", "this service's URL, for links in notifications", NOTIFICATIONS,
        parse.text)
    notify_rate_limits: dict = setting(
        {str(k): v for k, v in parse.DEFAULT_RATE_LIMITS.items()}, "AIOPS_NOTIFY_RATE_LIMITS",
        "seconds between trigger/update messages for one incident, per severity", NOTIFICATIONS,
        parse.rate_limits, shown="`critical=0,high=300,medium=900,low=3600`")
    notify_poll: float = setting(
        1.0, "AIOPS_NOTIFY_POLL", "seconds between outbox delivery passes", NOTIFICATIONS, parse.positive)
    notify_timeout: float = setting(
        5.0, "AIOPS_NOTIFY_TIMEOUT", "seconds one HTTP send may take", NOTIFICATIONS, parse.positive)
    notify_backoff: float = setting(
        2.0, "AIOPS_NOTIFY_BACKOFF", "first retry delay (jittered, doubling)", NOTIFICATIONS,
        parse.positive)
    notify_backoff_max: float = setting(
        300.0, "AIOPS_NOTIFY_BACKOFF_MAX", "longest retry delay", NOTIFICATIONS, parse.positive)
    notify_max_attempts: int = setting(
        10, "AIOPS_NOTIFY_MAX_ATTEMPTS", "attempts before a message is `failed`", NOTIFICATIONS,
        parse.count)
    notify_lease: float | None = setting(
        None, "AIOPS_NOTIFY_LEASE", "seconds a claimed message is one sender's", NOTIFICATIONS,
        parse.positive, shown="max(60, 4 × timeout)")
    breaker_threshold: int = setting(
        5, "AIOPS_BREAKER_THRESHOLD", "retryable failures in a row that open a channel's breaker ...",
        NOTIFICATIONS, parse.count)
    breaker_cooldown: float = setting(
        60.0, "AIOPS_BREAKER_COOLDOWN", "... and for how many seconds", NOTIFICATIONS, parse.positive)

    # Remediation hooks, one per incident kind (see IncidentKind)
    remediation_latency_url: str | None = setting(
        None, "AIOPS_REMEDIATION_LATENCY_URL", "hook called for a confirmed latency incident", REMEDIATION,
        parse.text)
    remediation_errors_url: str | None = setting(
        None, "AIOPS_REMEDIATION_ERRORS_URL", "hook called for a confirmed errors incident", REMEDIATION,
        parse.text)
    remediation_timeout_url: str | None = setting(
        None, "AIOPS_REMEDIATION_TIMEOUT_URL", "hook called for a confirmed timeout incident", REMEDIATION,
        parse.text)
    remediation_cascading_url: str | None = setting(
        None, "AIOPS_REMEDIATION_CASCADING_URL", "hook called for a confirmed cascading incident",
        REMEDIATION, parse.text)
    remediation_slo_url: str | None = setting(
        None, "AIOPS_REMEDIATION_SLO_URL", "hook called for a confirmed SLO incident (an SLO's burn-rate "
        "alert)", REMEDIATION, parse.text)
    remediation_degradation_url: str | None = setting(
        None, "AIOPS_REMEDIATION_DEGRADATION_URL", "hook called for a confirmed degradation incident",
        REMEDIATION, parse.text)
    remediation_traffic_drop_url: str | None = setting(
        None, "AIOPS_REMEDIATION_TRAFFIC_DROP_URL", "hook called for a confirmed traffic drop incident",
        REMEDIATION, parse.text)
    remediation_dependency_url: str | None = setting(
        None, "AIOPS_REMEDIATION_DEPENDENCY_URL", "hook called for a confirmed dependency incident",
        REMEDIATION, parse.text)
    remediation_exhaustion_url: str | None = setting(
        None, "AIOPS_REMEDIATION_EXHAUSTION_URL", "hook called for a confirmed exhaustion incident",
        REMEDIATION, parse.text)
    remediation_invalid_response_url: str | None = setting(
        None, "AIOPS_REMEDIATION_INVALID_RESPONSE_URL", "hook called for a confirmed invalid_response "
        "incident", REMEDIATION, parse.text)
    remediation_timeouts_url: str | None = setting(
        None, "AIOPS_REMEDIATION_TIMEOUTS_URL", "hook called for a confirmed timeouts (repeated) incident",
        REMEDIATION, parse.text)
    remediation_token: str | None = setting(
        None, "AIOPS_REMEDIATION_TOKEN", "bearer token sent to remediation hooks", REMEDIATION, parse.text)

    # Security
    api_token: str | None = setting(
        None, "AIOPS_API_TOKEN", "when set, mutating `/aiops/*` and `/simulate/*` calls need it "
        "([accepted forms](security.md#tokens)); it also guards `/v1/*` unless `AIOPS_INGEST_TOKEN` is set",
        SECURITY, parse.text)
    ingest_token: str | None = setting(
        None, "AIOPS_INGEST_TOKEN", "token `POST /v1/traces`, `/v1/logs` and `/v1/metrics` need "
        "([accepted forms](security.md#tokens))", SECURITY, parse.text, shown="the API token, else open")
    trusted_hosts: tuple[str, ...] = setting(
        ("127.0.0.1", "localhost", "::1"), "AIOPS_TRUSTED_HOSTS", "host names this server answers for "
        "(`Host`); others get 400. `.example.com` trusts its subdomains, `*` any host", SECURITY,
        parse.names)
    protect_reads: bool = setting(
        False, "AIOPS_PROTECT_READS", "`1` puts every read behind `AIOPS_API_TOKEN` too; `/health` stays "
        "open", SECURITY, parse.boolean)
    max_body_bytes: int = setting(
        1024 * 1024, "AIOPS_MAX_BODY_BYTES", "largest request body for every route but `/v1/*` (413 above)",
        SECURITY, parse.count)
    api_max_body_bytes: int = setting(
        64 * 1024, "AIOPS_API_MAX_BODY_BYTES", "largest request body for `/aiops/*`, `/simulate/*` and the "
        "page forms", SECURITY, parse.count)

    # OTLP ingest and replay
    otlp_max_bytes: int = setting(
        8 * 1024 * 1024, "AIOPS_OTLP_MAX_BYTES", "largest `/v1/*` body, counted after decompression (413 "
        "above)", INGEST, parse.count)
    otlp_max_spans: int = setting(
        50_000, "AIOPS_OTLP_MAX_SPANS", "spans in one request (413 above; counted before decoding a body "
        "over 256 KB)", INGEST, parse.count)
    otlp_max_log_records: int = setting(
        50_000, "AIOPS_OTLP_MAX_LOG_RECORDS", "log records in one `/v1/logs` request (413 above; counted "
        "before decoding a body over 256 KB)", INGEST, parse.count)
    otlp_max_metric_points: int = setting(
        50_000, "AIOPS_OTLP_MAX_METRIC_POINTS", "metric data points in one `/v1/metrics` request (413 above; "
        "counted before decoding a body over 256 KB)", INGEST, parse.count)
    log_body_max: int = setting(
        8 * 1024, "AIOPS_LOG_BODY_MAX", "characters of a log record's body that are stored (the rest is "
        "cut)", INGEST, parse.count)
    otlp_max_items: int = setting(
        500_000, "AIOPS_OTLP_MAX_ITEMS", "decoded items (spans, attributes, events, links, nested values) "
        "in one request (413 above)", INGEST, parse.count)
    otlp_max_attributes: int = setting(
        1_000, "AIOPS_OTLP_MAX_ATTRIBUTES", "attributes per span; a span over it is rejected alone (partial "
        "success)", INGEST, parse.count)
    otlp_max_events: int = setting(
        1_000, "AIOPS_OTLP_MAX_EVENTS", "events per span; a span over it is rejected alone", INGEST,
        parse.count)
    otlp_inflight_bytes: int = setting(
        256 * 1024 * 1024, "AIOPS_OTLP_INFLIGHT_BYTES", "bytes one process may decode at once; a request "
        "over it gets a retryable 503", INGEST, parse.count)
    otlp_max_age: float = setting(
        7 * 86400.0, "AIOPS_OTLP_MAX_AGE", "seconds a live span may start before now (not applied by "
        "replay)", INGEST, parse.positive)
    otlp_max_ahead: float = setting(
        3600.0, "AIOPS_OTLP_MAX_AHEAD", "seconds a live span may start after now", INGEST, parse.positive)
    otlp_max_duration: float = setting(
        86400.0, "AIOPS_OTLP_MAX_DURATION", "seconds a live span may last", INGEST, parse.positive)
    replay_max_pending: int = setting(
        500_000, "AIOPS_REPLAY_MAX_PENDING", "spans `flask aiops replay` holds to put a file in time order",
        INGEST, parse.count)

    # Demo
    enable_simulation: bool = setting(
        False, "AIOPS_ENABLE_SIMULATION", "enables the demo shop (`/checkout`, `/payment`, `/inventory`) and "
        "`/simulate/*`; off, those routes do not exist", DEMO, parse.boolean,
        shown="off (`1` for `python app.py`)")
    demo_timeout: float = setting(
        5.0, "AIOPS_DEMO_TIMEOUT", "seconds the demo's checkout waits for payment and inventory", DEMO,
        parse.positive)
    demo_base_url: str | None = setting(
        None, "AIOPS_DEMO_BASE_URL", "where checkout calls payment and inventory; never the request's "
        "`Host`", DEMO, parse.text, shown="this server's own socket address")
    demo_work: float = setting(
        1.0, "AIOPS_DEMO_WORK", "scales the demo endpoints' simulated work; `0` turns it off", DEMO,
        parse.non_negative)

    # Serving (read by `python app.py` and gunicorn.conf.py)
    port: int = setting(5000, "PORT", "port for `python app.py` (gunicorn: 8000)", SERVING, parse.count)
    host: str = setting("127.0.0.1", "HOST", "address `python app.py` listens on", SERVING)
    bind: str | None = setting(
        None, "AIOPS_BIND", "gunicorn's bind address", SERVING, parse.text, shown="`127.0.0.1:$PORT` (8000)")
    threads: int = setting(16, "AIOPS_THREADS", "threads per gunicorn worker", SERVING, parse.count)

    def __post_init__(self):
        # Typed values (a test configuration) skip the parsers; the choices still hold.
        parse.recorder(self.recorder)
        parse.compression(self.export_otlp_compression)

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
