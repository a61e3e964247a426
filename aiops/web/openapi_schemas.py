"""JSON Schemas of the API's bodies (OpenAPI 3.1 ``components.schemas``), as plain data.

Written by hand beside the views that build these bodies (``Incident.to_dict``,
``aiops.incidents.reports``, ``aiops.jobs.cycle``, ``aiops.outbox``, ``simulation``); the
live schemathesis run (``tests/e2e/test_openapi_live.py``) fails when a
response leaves them. Objects allow more properties than they list: a new
field is an extension, not a break.
"""

from __future__ import annotations

from aiops.kinds import AnomalyType, IncidentKind, Severity
from aiops.slos.service import SLO_ANOMALY
from aiops.web.incident_queries import MAX_LIMIT, MAX_NOTIFICATIONS, NOTIFICATION_STATUSES, STATUSES


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: tuple[str, ...] | list[str], **properties) -> dict:
    return {"type": "object", "required": list(required), "properties": properties}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


STRING = {"type": "string"}
NUMBER = {"type": "number"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 UTC, e.g. 2026-01-20T10:30:15Z"}
STRINGS = {"type": "array", "items": STRING}
ENDPOINT = nullable({"type": "string",
                     "description": "null: the whole service (evidence that names a service but none of its "
                                    "endpoints, e.g. log lines with no span)"})
CURSOR = nullable({"type": "string", "description": "pass it back as ?cursor= for the next page; null: last"})

SCHEMAS: dict[str, dict] = {
    "Error": obj(
        ("error", "message"),
        error={"type": "string", "description": "the HTTP status name, e.g. 'Not Found'"},
        message={"type": "string", "description": "what was wrong, for a person"},
        request_id={"type": "string", "description": "5xx only: the id the server log has the details under"},
    ),
    "RootCause": obj(("service", "endpoint", "issue"), service=STRING, endpoint=ENDPOINT, issue=STRING),
    "Candidate": obj(("service", "endpoint", "score"), service=STRING, endpoint=ENDPOINT, score=NUMBER,
                     pod={**STRING, "description": "the pod (k8s.pod.name, else service.instance.id, else "
                          "host.name) the evidence points at, when the service runs several and the spans "
                          "that show the fault come from one; absent otherwise. The service stays the "
                          "ranked unit"},
                     evidence=NUMBER),
    "Hop": obj(("service", "endpoint", "signal"), service=STRING, endpoint=ENDPOINT, signal=STRING,
               onset=nullable(TIME),
               log_lines={"type": "array", "items": {"type": "object"},
                          "description": "ERROR/WARN lines of the example trace at this hop (logs only)"},
               templates={"type": "array", "items": {"type": "object"},
                          "description": "log templates that changed at the root (logs only): kind (surge, "
                                         "new, trace-bound, vanished), template, template_id, count, "
                                         "expected, exception; a vanished path counts requests, not lines"}),
    "Anomaly": obj(
        ("service", "endpoint", "type", "observed", "baseline", "request_count", "message", "detected_at",
         "trace_ids"),
        service=STRING, endpoint=ENDPOINT, type={"enum": [*(t.value for t in AnomalyType), SLO_ANOMALY]},
        observed=NUMBER,
        baseline=nullable(NUMBER), request_count=INTEGER, message=STRING, detected_at=TIME, trace_ids=STRINGS,
        pattern={"enum": ["dependency", "exhaustion", "invalid_response", None],
                 "description": "what the evidence says fails (null: it does not say)"},
    ),
    "TimelineEvent": obj(("at", "event", "by"), at=TIME, event=STRING, by=STRING, detail=STRING),
    "Report": obj(("kind", "summary", "recommendations"),
                  kind={"enum": [*(k.value for k in IncidentKind), "unknown"]},
                  summary=STRING, recommendations=STRINGS),
    "Incident": obj(
        ("id", "status", "severity", "title", "root_cause", "root_cause_candidates", "affected_endpoints",
         "first_detected", "last_seen", "trace_correlation", "anomalies", "propagation_path", "resolved_at",
         "timeline", "confirmed", "seen_cycles", "reopen_count", "related_to", "remediation", "report"),
        id={"type": "string", "examples": ["INC-1737404800-1"]},
        status={"enum": list(STATUSES)},
        severity={"enum": [s.value for s in Severity]},
        title=STRING,
        root_cause=ref("RootCause"),
        root_cause_candidates={"type": "array", "items": ref("Candidate"), "description": "best first"},
        propagation_path={"type": "array", "items": ref("Hop")},
        affected_endpoints=STRINGS,
        first_detected=TIME,
        last_seen=TIME,
        resolved_at=nullable(TIME),
        kind={"enum": [*(k.value for k in IncidentKind), "unknown"],
              "description": "the failure pattern (the same as report.kind)"},
        episode_started={**TIME, "description": "when the current episode began (opened, reopened, or "
                         "another kind of fault took over): title, root_cause.issue, severity and "
                         "report.kind describe the anomalies since then"},
        trace_correlation=obj(("trace_id", "correlated_failures"), trace_id=nullable(STRING),
                              correlated_failures=STRINGS),
        anomalies={"type": "array", "items": ref("Anomaly")},
        timeline={"type": "array", "items": ref("TimelineEvent")},
        confirmed={"type": "boolean", "description": "seen long enough to notify"},
        seen_cycles=INTEGER,
        reopen_count=INTEGER,
        related_to=nullable(STRING),
        remediation=nullable({"enum": ["requested", "ran", "failed", "cleared", "persisting"]}),
        report=ref("Report"),
        silenced={"type": "boolean", "description": "an active silence covers it: it sends no notification"},
        silence_id={**nullable(STRING), "description": "the silence that covers it, or null"},
    ),
    "IncidentList": obj(
        ("active_incidents", "resolved_incidents", "next"),
        active_incidents={"type": "array", "items": ref("Incident"), "maxItems": MAX_LIMIT},
        resolved_incidents={"type": "array", "items": ref("Incident"), "maxItems": MAX_LIMIT},
        next=CURSOR,
    ),
    "Actor": {
        "type": "object",
        "properties": {"by": {"type": "string", "maxLength": 200, "description": "who (default 'api')"},
                       "comment": {"type": "string", "maxLength": 2000}},
    },
    "Notification": obj(
        ("id", "channel", "incident_id", "event", "status", "attempts", "created_at"),
        id=INTEGER, channel=STRING, incident_id=STRING, event=STRING, dedup_key=STRING, severity=STRING,
        status={"enum": list(NOTIFICATION_STATUSES)}, attempts=INTEGER, created_at=TIME,
        next_attempt_at=nullable(TIME), delivered_at=nullable(TIME), last_status=nullable(INTEGER),
        last_error=nullable(STRING),
    ),
    "ChannelStats": obj(
        ("configured", "pending", "delivered", "failed", "superseded", "breaker"),
        configured=BOOLEAN, pending=INTEGER, delivered=INTEGER, failed=INTEGER, superseded=INTEGER,
        breaker={"enum": ["closed", "open", "half-open"]}, consecutive_failures=INTEGER,
        open_until=nullable(TIME), attempts=INTEGER, last_error=nullable(STRING),
        last_attempt_at=nullable(TIME),
    ),
    "NotificationList": obj(
        ("channels", "notifications", "next"),
        channels={"type": "object", "additionalProperties": ref("ChannelStats")},
        notifications={"type": "array", "items": ref("Notification"), "maxItems": MAX_NOTIFICATIONS},
        next=CURSOR,
    ),
    "EndpointMetrics": obj(
        ("avg_latency_ms", "baseline_latency_ms", "error_rate", "request_count", "status_distribution"),
        service=STRING, endpoint=STRING, avg_latency_ms=NUMBER, baseline_latency_ms=nullable(NUMBER),
        error_rate=NUMBER, request_count=INTEGER,
        status_distribution={"type": "object", "additionalProperties": INTEGER,
                             "description": "status code (or 'none') -> requests"},
    ),
    "CycleSummary": obj(
        ("spans", "endpoints", "anomalies", "incidents_opened", "incidents_updated", "incidents_resolved",
         "duration_ms"),
        started_at=NUMBER, spans=INTEGER, endpoints=INTEGER, learning=STRING,
        anomalies={"type": "array", "items": obj(("service", "endpoint", "type", "message"), service=STRING,
                                                   endpoint=STRING, type=STRING, message=STRING)},
        incidents_opened=STRINGS, incidents_updated=STRINGS, incidents_reopened=STRINGS,
        incidents_resolved=STRINGS, notifications_queued=INTEGER, groups_merged_into_storm=INTEGER,
        duration_ms=NUMBER,
    ),
    "Health": obj(
        ("status", "security"),
        status={"const": "ok"},
        security=obj(("ingest", "api", "reads", "warnings"), ingest={"enum": ["open", "token"]},
                     api={"enum": ["open", "token"]}, reads={"enum": ["open", "token"]}, warnings=STRINGS),
    ),
    "TelemetryHealth": obj(
        ("status", "healthy", "export", "issues", "resilience_metrics"),
        status={"enum": ["healthy", "degraded", "failing"]}, healthy=BOOLEAN,
        export={"enum": ["enabled", "disabled"]}, endpoint=STRING, message=STRING, issues=STRINGS,
        resilience_metrics=obj(
            ("queued", "exported", "retried", "dropped", "fallback_bytes", "breaker_state", "breaker_trips",
             "consecutive_failures", "last_success", "last_failure", "last_error"),
            queued=INTEGER, exported=INTEGER, retried=INTEGER, dropped=INTEGER, fallback_bytes=INTEGER,
            breaker_state={"enum": ["closed", "open", "half_open"]}, breaker_trips=INTEGER,
            consecutive_failures=INTEGER, last_success=nullable(TIME), last_failure=nullable(TIME),
            last_error=nullable(STRING)),
    ),
    "OtlpTraces": {
        "type": "object",
        "description": "ExportTraceServiceRequest in OTLP/JSON (hex ids, int64 as strings or numbers)",
        "properties": {"resourceSpans": {"type": ["array", "null"], "items": {"type": "object"},
                                         "description": "null, as in proto3 JSON, is an empty list"}},
    },
    "OtlpResponse": {
        "type": "object",
        "description": "ExportTraceServiceResponse: empty on full success",
        "properties": {"partialSuccess": obj((), rejectedSpans={"type": ["string", "integer"]},
                                             errorMessage=STRING)},
    },
    "OtlpLogs": {
        "type": "object",
        "description": "ExportLogsServiceRequest in OTLP/JSON (hex ids, int64 as strings or numbers)",
        "properties": {"resourceLogs": {"type": ["array", "null"], "items": {"type": "object"},
                                        "description": "null, as in proto3 JSON, is an empty list"}},
    },
    "OtlpLogsResponse": {
        "type": "object",
        "description": "ExportLogsServiceResponse: empty on full success",
        "properties": {"partialSuccess": obj((), rejectedLogRecords={"type": ["string", "integer"]},
                                             errorMessage=STRING)},
    },
    "LogRecord": obj(
        ("id", "time", "timestamp", "service", "severity_number", "severity_text", "body", "trace_id",
         "span_id", "attributes", "template_id"),
        id=INTEGER, time={**TIME, "description": "ISO 8601 UTC with milliseconds"},
        timestamp={**NUMBER, "description": "epoch seconds"}, service=STRING,
        severity_number={"type": "integer", "minimum": 0, "maximum": 24},
        severity_text=nullable(STRING), body=nullable(STRING), trace_id=nullable(STRING),
        span_id=nullable(STRING), attributes={"type": "object", "description": "the kept attributes"},
        template_id=nullable(INTEGER),
    ),
    "LogList": obj(("logs", "next"), logs={"type": "array", "items": ref("LogRecord")}, next=CURSOR),
    "LogTemplate": obj(
        ("service", "template_id", "template", "first_seen", "last_seen", "count", "exception"),
        service=STRING, template_id={**INTEGER, "description": "unique within the service; logs carry it"},
        template={**STRING, "description": "the lines' text with what varies masked (<NUM>, <*>...)"},
        first_seen={**TIME, "description": "ISO 8601 UTC with milliseconds"},
        last_seen={**TIME, "description": "ISO 8601 UTC with milliseconds"},
        count={**INTEGER, "description": "lines mined into it"},
        exception={**BOOLEAN, "description": "it reports an exception or a stack frame"},
    ),
    "LogTemplateList": obj(("templates", "next"), templates={"type": "array", "items": ref("LogTemplate")},
                           next=CURSOR),
    "RpcStatus": {
        "type": "object",
        "description": "google.rpc.Status, the OTLP/HTTP error body",
        "properties": {"code": INTEGER, "message": STRING, "details": {"type": "array"}},
    },
}
