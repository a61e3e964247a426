"""OTLP log records -> log rows. Pure logic: decoded messages in, tuples out (no Flask).

Decoding itself is :mod:`telemetry.otlp`'s (the same official messages,
``json_format``, UTF-8 repair and limits as traces). How a record becomes a
row (``telemetry.models.LOG_FIELDS`` order):

- ``time``: ``time_unix_nano``, else ``observed_time_unix_nano`` (the SDKs set
  the second when the first is unknown), in epoch seconds;
- ``service``: the resource's ``service.name`` (``unknown_service`` without one);
- ``severity_number`` (0..24, SeverityNumber) and ``severity_text`` (the
  record's own, else the name of its number's range: ``ERROR`` for 17..20);
- ``body``: a string body as is; any other AnyValue rendered as JSON text;
  cut to ``body_max`` characters;
- ``trace_id``/``span_id``: hex, or None when the record has none;
- ``attributes``: a JSON object of the few keys RCA and people read
  (exceptions, code location, pod), each value cut, or None.

A record is *rejected* alone (partial success): no time at all, a trace id
that is neither empty nor 16 bytes, a span id that is neither empty nor 8
bytes; live ingest adds :class:`LogChecks`. An all-zero id means "none".
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from telemetry.otlp.mapping import Mapped, clean, scalar, service_name

BODY_MAX = 8 * 1024
_MAX_SEVERITY_TEXT = 32
_MAX_ATTR_VALUE = 1024
# The attributes kept (old and new semantic-convention names): what explains an error and where.
KEPT_ATTRIBUTES = (
    "exception.type", "exception.message", "exception.stacktrace",
    "code.function", "code.function.name", "code.namespace", "code.filepath", "code.file.path",
    "code.lineno", "code.line.number",
    "k8s.pod.name", "k8s.container.name", "host.name", "event.name", "log.logger", "logger.name",
)
_KEPT = frozenset(KEPT_ATTRIBUTES)
# SeverityNumber ranges (1-4 TRACE ... 21-24 FATAL), the text a record without one is shown with.
SEVERITY_NAMES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(", ", ": ")).encode  # made once


def severity_name(number: int) -> str | None:
    """``ERROR`` for 17..20 and so on; None for 0 (unspecified) or out of range."""
    return SEVERITY_NAMES[(number - 1) // 4] if 1 <= number <= 24 else None


def severity_number(name: str) -> int | None:
    """The lowest number of a level's range (``warn``/``warning`` -> 13), None if unknown."""
    name = name.strip().upper()
    name = {"WARNING": "WARN", "CRITICAL": "FATAL", "ERR": "ERROR"}.get(name, name)
    return SEVERITY_NAMES.index(name) * 4 + 1 if name in SEVERITY_NAMES else None


def _plain(any_value):
    """An AnyValue as plain JSON data (bytes as hex)."""
    which = any_value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_plain(v) for v in any_value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in any_value.kvlist_value.values}
    if which == "bytes_value":
        return any_value.bytes_value.hex()
    return scalar(any_value)


def body_text(any_value, limit: int = BODY_MAX) -> str | None:
    """The body as text: a string as is, anything else as compact JSON; cut to ``limit``."""
    which = any_value.WhichOneof("value")
    if which is None:
        return None
    if which == "string_value":
        text = any_value.string_value
    else:
        plain = _plain(any_value)
        text = plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False,
                                                               separators=(",", ":"))
    return clean(text[: limit + 1], limit)


def kept_attributes(attributes) -> str | None:
    """The kept keys as a bounded JSON object (at most ``len(KEPT_ATTRIBUTES)`` values of
    ``_MAX_ATTR_VALUE`` characters), or None."""
    kept = {}
    for kv in attributes:
        if kv.key in _KEPT:
            value = scalar(kv.value)
            if isinstance(value, str):
                value = clean(value, _MAX_ATTR_VALUE)
            if value is not None:
                kept[kv.key] = value
    return _ENCODE(kept) if kept else None


def _id(raw: bytes, size: int) -> str | None | bool:
    """Hex id, None for none (empty or all zero), False for a wrong length."""
    if not raw or not any(raw):
        return None if len(raw) in (0, size) else False
    return raw.hex() if len(raw) == size else False


@dataclass(frozen=True)
class LogChecks:
    """What live ingest also refuses, record by record (replay keeps the data's own clock).

    The same rules as :class:`telemetry.otlp.SpanChecks`: far from now, too many
    attributes, the product's own service name (only its own handler writes it).
    """

    now: float
    max_age: float = 7 * 86400.0
    max_ahead: float = 3600.0
    max_attributes: int = 1_000
    own_services: frozenset[str] = frozenset()

    def why(self, service: str, record, when: float) -> str | None:
        if service in self.own_services:
            return f"service.name {service!r} is this product's own (only its recorder writes it)"
        if len(record.attributes) > self.max_attributes:
            return f"more than {self.max_attributes} attributes (AIOPS_OTLP_MAX_ATTRIBUTES)"
        if when < self.now - self.max_age:
            return f"time more than {self.max_age:g}s before now (AIOPS_OTLP_MAX_AGE)"
        if when > self.now + self.max_ahead:
            return f"time more than {self.max_ahead:g}s after now (AIOPS_OTLP_MAX_AHEAD)"
        return None


def _invalid(record, trace_id, span_id) -> str | None:
    if not (record.time_unix_nano or record.observed_time_unix_nano):
        return "missing time_unix_nano and observed_time_unix_nano"
    if trace_id is False:
        return "invalid trace_id (need empty or 16 bytes, 32 hex digits)"
    if span_id is False:
        return "invalid span_id (need empty or 8 bytes, 16 hex digits)"
    return None


_ZERO_TRACE, _ZERO_SPAN = bytes(16), bytes(8)
_SEVERITY_TEXT = [severity_name(n) for n in range(25)]
_attributes_json: dict[tuple, str] = {}  # kept attributes -> their JSON (code locations repeat)
_MAX_REMEMBERED = 10_000


def _attributes(kept: dict) -> str:
    """``kept`` as JSON, remembered when its values are strings and integers (equal ones are written
    alike; not so floats, ``0.0 == -0.0``, nor bools, ``True == 1``)."""
    if not all(type(v) is str or type(v) is int for v in kept.values()):
        return _ENCODE(kept)
    key = tuple(kept.items())
    text = _attributes_json.get(key)
    if text is None:
        text = _ENCODE(kept)
        if len(_attributes_json) >= _MAX_REMEMBERED:
            _attributes_json.clear()
        _attributes_json[key] = text
    return text


def to_log_rows(request: ExportLogsServiceRequest, checks: LogChecks | None = None,
                body_max: int = BODY_MAX) -> Mapped:
    """Map every log record of ``request``; invalid ones are counted, not raised.

    The loop does per record what :func:`_id`, :func:`body_text` and
    :func:`kept_attributes` do (it runs for every record ingested, so it reads
    each field once and calls no helper for the common case); the JSON of a
    record's kept attributes is remembered by their values.
    """
    result = Mapped(noun="log record")
    rows = result.rows
    kept_keys = _KEPT
    for rl in request.resource_logs:
        service = service_name(rl.resource)
        for sl in rl.scope_logs:
            for record in sl.log_records:
                raw = record.trace_id
                if len(raw) == 16:
                    trace_id = raw.hex() if raw != _ZERO_TRACE else None
                else:
                    trace_id = False if raw else None
                raw = record.span_id
                if len(raw) == 8:
                    span_id = raw.hex() if raw != _ZERO_SPAN else None
                else:
                    span_id = False if raw else None
                when = record.time_unix_nano or record.observed_time_unix_nano
                if not when or trace_id is False or span_id is False:
                    reason = _invalid(record, trace_id, span_id)
                else:
                    reason = None if checks is None else checks.why(service, record, when / 1e9)
                if reason is not None:
                    result.rejected += 1
                    result.reasons[reason] += 1
                    continue
                number = record.severity_number
                if not 0 <= number <= 24:
                    number = 0
                text = record.severity_text
                text = (clean(text, _MAX_SEVERITY_TEXT) if text else None) or _SEVERITY_TEXT[number]
                body = record.body
                if body.WhichOneof("value") == "string_value":
                    body = body.string_value
                    body = clean(body[: body_max + 1], body_max) if body else None
                else:
                    body = body_text(body, body_max)
                kept = None
                for kv in record.attributes:
                    if kv.key in kept_keys:
                        value = scalar(kv.value)
                        if isinstance(value, str):
                            value = clean(value, _MAX_ATTR_VALUE)
                        if value is not None:
                            if kept is None:
                                kept = {}
                            kept[kv.key] = value
                rows.append((when / 1e9, service, number, text, body, trace_id, span_id,
                             None if kept is None else _attributes(dict(sorted(kept.items())))))
    return result


def export_response(mapped: Mapped) -> ExportLogsServiceResponse:
    """An empty response (full success), or a partial success naming what was rejected."""
    if not mapped.rejected:
        return ExportLogsServiceResponse()
    return ExportLogsServiceResponse(partial_success=ExportLogsPartialSuccess(
        rejected_log_records=mapped.rejected, error_message=mapped.error_message))


def is_logs_document(doc: dict) -> bool:
    """Whether an OTLP/JSON document is a logs request (``resourceLogs``), not a trace one."""
    return "resourceLogs" in doc or "resource_logs" in doc

