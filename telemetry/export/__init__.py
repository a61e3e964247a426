"""Resilient OTLP export: the product's own spans (and, with ``AIOPS_EXPORT_INGESTED=1``, every span
it ingests) sent on to an OpenTelemetry backend (``AIOPS_EXPORT_OTLP_ENDPOINT``: a Collector, Jaeger,
Tempo, another instance of this product).

- :mod:`~telemetry.export.policy`: backoff, circuit breaker, buffer accounting, health verdict (pure);
- :mod:`~telemetry.export.spans`: rows -> the SDK's spans and OTLP/JSON lines, and back;
- :mod:`~telemetry.export.fallback`: the size-capped, rotated OTLP/JSON lines files;
- :mod:`~telemetry.export.sender`: the background thread around the official exporter;
- :mod:`~telemetry.export.metrics` and :mod:`~telemetry.export.views`: ``/metrics`` and
  ``GET /telemetry/health``.

Spans are handed over *after* they are stored (the span writer's batch, an ingested batch), so the
receiver gets the spans the product stored, with their ids and times. Each process exports its own
spans (gunicorn workers, the demo); ``GET /telemetry/health`` and ``/metrics`` speak for them all.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from flask import Flask

    from telemetry.export.sender import Exporter

EXTENSION = "aiops_exporter"  # app.extensions: the Exporter, or None when export is off
TRACES_PATH = "/v1/traces"


def traces_url(endpoint: str) -> str:
    """``http://collector:4318`` -> ``http://collector:4318/v1/traces``; a URL with a path is kept."""
    endpoint = endpoint.strip()
    return endpoint.rstrip("/") + TRACES_PATH if urlsplit(endpoint).path in ("", "/") else endpoint


def build(settings, instance_path: str) -> Exporter | None:
    """The exporter the settings describe, or None when ``AIOPS_EXPORT_OTLP_ENDPOINT`` is unset.
    Nothing is opened or started here (the thread starts with the first spans)."""
    endpoint = (settings.export_otlp_endpoint or "").strip()
    if not endpoint:
        return None
    from telemetry.export import metrics, policy
    from telemetry.export.fallback import Fallback
    from telemetry.export.sender import Exporter, make_otlp_exporter

    url = traces_url(endpoint)
    made = []

    def send(spans) -> tuple[bool, str | None, int | None]:
        from opentelemetry.sdk.trace.export import SpanExportResult

        if not made:  # built in the sender thread, after any fork
            made.extend(make_otlp_exporter(url, settings.export_otlp_headers, settings.export_otlp_timeout,
                                           settings.export_otlp_compression))
        otlp_exporter, session = made
        session.last_error = session.last_status = None
        ok = otlp_exporter.export(spans) == SpanExportResult.SUCCESS
        return ok, None if ok else session.last_error, session.last_status

    folder = settings.export_fallback_dir or os.path.join(instance_path, "export-fallback")
    exporter = Exporter(
        send, Fallback(folder, settings.export_fallback_max_bytes),
        pending=policy.Pending(settings.export_buffer_spans, settings.export_buffer_age),
        backoff=policy.Backoff(settings.export_backoff_initial, settings.export_backoff_max),
        breaker=policy.Breaker(settings.export_breaker_failures, settings.export_breaker_open),
        secrets=tuple(settings.export_otlp_headers.values()), endpoint=url)
    exporter.on_step = metrics.Reporter().report
    return exporter


def init_app(app: Flask, settings) -> None:
    from telemetry.export.views import bp

    app.extensions[EXTENSION] = build(settings, app.instance_path)
    app.extensions["aiops_export_ingested"] = bool(settings.export_ingested)
    app.register_blueprint(bp)


def exporter_of(app: Flask) -> Exporter | None:
    return app.extensions.get(EXTENSION)


def forward_ingested(app: Flask, rows: Sequence[tuple]) -> None:
    """Spans stored from ``POST /v1/traces``: exported too when ``AIOPS_EXPORT_INGESTED=1``."""
    exporter = app.extensions.get(EXTENSION)
    if exporter is not None and app.extensions.get("aiops_export_ingested"):
        exporter.submit(rows)
