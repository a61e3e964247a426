"""The settings of the OTLP export (:mod:`telemetry.export`), declared like every other setting and
inherited by :class:`~aiops.settings.fields.Settings` (kept apart only so each module reads whole)."""

from __future__ import annotations

from dataclasses import dataclass

from aiops.settings import parse
from aiops.settings.declare import EXPORT, setting


@dataclass(frozen=True)
class ExportSettings:
    export_otlp_endpoint: str | None = setting(
        None, "AIOPS_EXPORT_OTLP_ENDPOINT", "OTLP/HTTP traces URL the product's spans are sent to "
        "(`http://collector:4318/v1/traces`; a URL without a path gets `/v1/traces`); unset, nothing is "
        "exported", EXPORT, parse.text)
    export_otlp_headers: dict = setting(
        {}, "AIOPS_EXPORT_OTLP_HEADERS", "headers sent with every export, `name=value,name2=value2` as "
        "`OTEL_EXPORTER_OTLP_HEADERS` writes them (values never shown by `/telemetry/health`)", EXPORT,
        parse.headers, shown="none")
    export_otlp_timeout: float = setting(
        10.0, "AIOPS_EXPORT_OTLP_TIMEOUT", "seconds one export may take (the official exporter retries "
        "transient errors itself within it)", EXPORT, parse.positive)
    export_otlp_compression: str = setting(
        "gzip", "AIOPS_EXPORT_OTLP_COMPRESSION", "`gzip`, `deflate` or `none`", EXPORT, parse.compression)
    export_ingested: bool = setting(
        False, "AIOPS_EXPORT_INGESTED", "`1` also exports every span stored from `POST /v1/traces` (the "
        "product as a tee in front of Jaeger, Tempo or a Collector)", EXPORT, parse.boolean)
    export_buffer_spans: int = setting(
        10_000, "AIOPS_EXPORT_BUFFER_SPANS", "spans a process holds in memory for export; older ones go "
        "to the fallback file beyond it", EXPORT, parse.count)
    export_buffer_age: float = setting(
        300.0, "AIOPS_EXPORT_BUFFER_AGE", "seconds a span waits in memory before it goes to the fallback "
        "file", EXPORT, parse.positive)
    export_backoff_initial: float = setting(
        1.0, "AIOPS_EXPORT_BACKOFF_INITIAL", "seconds before the first retry of a failed export; doubled "
        "per failure, +-25 % jitter", EXPORT, parse.positive)
    export_backoff_max: float = setting(
        16.0, "AIOPS_EXPORT_BACKOFF_MAX", "longest wait between retries (before jitter)", EXPORT,
        parse.positive)
    export_breaker_failures: int = setting(
        5, "AIOPS_EXPORT_BREAKER_FAILURES", "consecutive failed exports that open the circuit breaker",
        EXPORT, parse.count)
    export_breaker_open: float = setting(
        60.0, "AIOPS_EXPORT_BREAKER_OPEN", "seconds the open breaker sends nothing; then one trial export "
        "closes it or opens it again", EXPORT, parse.positive)
    export_fallback_dir: str | None = setting(
        None, "AIOPS_EXPORT_FALLBACK_DIR", "folder of the fallback files (OTLP/JSON lines, one folder per "
        "process)", EXPORT, parse.text, shown="`instance/export-fallback`")
    export_fallback_max_bytes: int = setting(
        100 * 1024 * 1024, "AIOPS_EXPORT_FALLBACK_MAX_BYTES", "bytes of fallback files a process keeps; "
        "rotated every tenth of it, the oldest file dropped (and counted) beyond it", EXPORT, parse.count)
