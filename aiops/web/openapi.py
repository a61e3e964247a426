"""``GET /openapi.json``: the OpenAPI 3.1 description of every JSON endpoint this server has.

Hand-written beside the code rather than generated: the routes are plain
Flask views in three packages that parse their own input (query strings,
optional JSON bodies, OTLP protobuf), so apispec would still need this text
as YAML in docstrings, and flask-smorest would have every view rewritten
around marshmallow with its own error format. A dict is data a test can walk:
``tests/web/test_openapi.py`` checks that every route of the app is here with its
methods and that the document is valid OpenAPI 3.1; the live schemathesis run
checks the answers against it.

The document describes *this* server: the ``/simulate/*`` and shop routes
only when the demo is on (only then do they exist), and the security each
operation needs as configured (``AIOPS_API_TOKEN``, ``AIOPS_INGEST_TOKEN``,
``AIOPS_PROTECT_READS``). Every operation may also answer 400 when the
``Host`` header is not trusted (:mod:`aiops.web.security`).
"""

from __future__ import annotations

import copy

from flask import Blueprint, Flask, current_app, jsonify

from aiops.kinds import Severity
from aiops.settings import Settings, settings_of
from aiops.web import log_queries as log_service
from aiops.web.incident_queries import (
    DEFAULT_LIMIT,
    DEFAULT_NOTIFICATIONS,
    MAX_CHANNEL_CHARS,
    MAX_ID_CHARS,
    MAX_LIMIT,
    MAX_NOTIFICATIONS,
    MAX_SERVICE_CHARS,
    NOTIFICATION_STATUSES,
    STATUSES,
)
from aiops.web.openapi_schemas import SCHEMAS, ref

bp = Blueprint("openapi", __name__)
VERSION = "1.0.0"
JSON = "application/json"
PROTOBUF = "application/x-protobuf"
TEXT = {"schema": {"type": "string"}}

NO_NUL = "^[^\\u0000]*$"  # what no database column holds (a 400)
ERRORS = {
    400: "Bad parameters or body (the message says which), or a Host not in AIOPS_TRUSTED_HOSTS",
    401: "The token is missing or wrong",
    403: "A cross-site browser request (its Origin names another host)",
    404: "No such thing",
    409: "The current state does not allow it",
    413: "The body is over the server's limit",
}


# gunicorn refuses a longer request line itself (``limit_request_line``), in its own HTML page:
# a query string may be long enough (a page cursor and a few names of many-byte characters).
TOO_LONG = {"description": "The request line is over the HTTP server's limit (gunicorn: 4,094 bytes); "
                           "answered by the server before the app, as an HTML page",
            "content": {"text/html": TEXT}}


def error(code: int, text: str | None = None) -> dict:
    return {"description": text or ERRORS[code], "content": {JSON: {"schema": ref("Error")}}}


def ok(schema: dict, text: str = "OK") -> dict:
    return {"200": {"description": text, "content": {JSON: {"schema": schema}}}}


def query(name: str, schema: dict, text: str, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": text}


LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
               "incidents per list and page")
CURSOR = query("cursor", {"type": "string", "maxLength": 1024},
                "the 'next' value of the previous page (same filters); anything else is a 400")
# since/until of the chart, map and trace APIs: a duration back from now, or a time (telemetry.times);
# empty, as a page's form sends a field left blank: the default.
EMPTY = {"type": "string", "maxLength": 0}
MOMENT = {"anyOf": [{"type": "string", "pattern": "^[0-9]{1,6}[smhdwSMHDW]$"},
                   {"type": "string", "pattern": log_service.TIME_PATTERN},
                   {"type": "string", "format": "date-time"}, EMPTY]}
LOG_TIME = {"anyOf": [{"type": "string", "pattern": log_service.TIME_PATTERN},
                     {"type": "string", "format": "date-time"}]}
LOG_SERVICE = query("service", {"type": "string", "maxLength": log_service.MAX_SERVICE_CHARS,
                                "pattern": NO_NUL}, "only this service's")


def _log_limit(noun: str) -> dict:
    return query("limit", {"type": "integer", "minimum": 1, "maximum": log_service.MAX_LIMIT,
                           "default": log_service.DEFAULT_LIMIT}, f"{noun} per page")


def _log_text(of: str) -> dict:
    return query("text", {"type": "string", "maxLength": log_service.MAX_TEXT_CHARS, "pattern": NO_NUL},
                 f"substring of the {of} (any case)")


INCIDENT_ID = {"name": "incident_id", "in": "path", "required": True,
               "schema": {"type": "string", "maxLength": MAX_ID_CHARS},
               "description": "e.g. INC-1737404800-1"}


def _links(source: str, *operations: str) -> dict:
    """Links from a response to the incident operations (operationId = the Flask endpoint name)."""
    where = f"$response.body#{source}"
    return {op.partition(".")[2]: {"operationId": op, "parameters": {"incident_id": where}}
            for op in operations}


def _with_links(response: dict, links: dict) -> dict:
    return {"200": {**response["200"], "links": links}}


def _incident_paths() -> dict:
    changes = ("aiops.acknowledge", "aiops.resolve")
    transition = {
        "parameters": [INCIDENT_ID],
        "requestBody": {"required": False, "description": "optional; an empty body means by 'api'",
                        "content": {JSON: {"schema": ref("Actor")}}},
        "responses": {**_with_links(ok(ref("Incident"), "The incident after the change"),
                                    _links("/id", *changes)), "400": error(400),
                      "404": error(404, "No incident with this id"),
                      "409": error(409, "Already acknowledged, or already resolved")},
        "x-mutation": True,
    }
    return {
        "/aiops/incidents": {"get": {
            "summary": "Active and resolved incidents, newest last_seen first, a page of each",
            "description": "Filtered and paged in SQL. Follow 'next' as ?cursor= (with the same filters) "
                           "until it is null.",
            "parameters": [
                LIMIT,
                query("status", {"enum": list(STATUSES)}, "only incidents in this state"),
                query("severity", {"enum": [s.value for s in Severity]}, "only incidents of this severity"),
                query("service", {"type": "string", "maxLength": MAX_SERVICE_CHARS, "pattern": NO_NUL},
                       "only incidents whose root cause is in this service"),
                CURSOR,
            ],
            "responses": {**_with_links(ok(ref("IncidentList")),
                                        _links("/active_incidents/0/id", "aiops.incident", *changes)),
                          "400": error(400)},
        }},
        "/aiops/incidents/{incident_id}": {"get": {
            "summary": "One incident",
            "parameters": [INCIDENT_ID],
            "responses": {**_with_links(ok(ref("Incident")), _links("/id", *changes)), "400": error(400),
                          "404": error(404, "No incident with this id")},
        }},
        "/aiops/incidents/{incident_id}/acknowledge": {"post": {"summary": "Acknowledge", **transition}},
        "/aiops/incidents/{incident_id}/resolve": {"post": {"summary": "Resolve", **transition}},
    }


def _notification_paths() -> dict:
    return {
        "/aiops/notifications": {"get": {
            "summary": "Notification history (newest first) and per-channel delivery stats",
            "parameters": [
                query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_NOTIFICATIONS,
                                 "default": DEFAULT_NOTIFICATIONS}, "notifications per page"),
                query("incident", {"type": "string", "maxLength": MAX_ID_CHARS, "pattern": NO_NUL},
                      "only this incident's"),
                query("status", {"enum": list(NOTIFICATION_STATUSES)}, "only in this state"),
                query("channel", {"type": "string", "maxLength": MAX_CHANNEL_CHARS, "pattern": NO_NUL},
                      "only this channel's"),
                {**CURSOR, "description": "the 'next' value of the previous page"},
            ],
            "responses": {**ok(ref("NotificationList")), "400": error(400)},
        }},
    }


def _log_paths() -> dict:
    return {
        "/aiops/logs": {"get": {
            "summary": "Stored log records, newest first, filtered and paged",
            "parameters": [
                _log_limit("records"),
                LOG_SERVICE,
                query("severity", {"enum": list(log_service.SEVERITY_CHOICES)},
                      "lowest severity shown: a SeverityNumber 0..24 or a level name"),
                _log_text("body"),
                query("trace_id", {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}, "only this trace's"),
                query("template_id",
                      {"type": "integer", "minimum": 1, "maximum": log_service.MAX_TEMPLATE_ID},
                      "only lines of this template (ids are per service: pair it with service)"),
                query("from", LOG_TIME, "from this time: epoch seconds or ISO 8601 (UTC without an offset)"),
                query("to", LOG_TIME, "up to this time (same forms)"),
                {**CURSOR, "description": "the 'next' value of the previous page"},
            ],
            "responses": {**ok(ref("LogList")), "400": error(400)},
        }},
        "/aiops/logs/templates": {"get": {
            "summary": "Log templates mined by the detection cycles, newest (first seen) first, paged",
            "parameters": [
                _log_limit("templates"),
                LOG_SERVICE,
                _log_text("template"),
                {**CURSOR, "description": "the 'next' value of the previous page"},
            ],
            "responses": {**ok(ref("LogTemplateList")), "400": error(400)},
        }},
    }


def _detection_paths() -> dict:
    return {
        "/aiops/metrics": {"get": {
            "summary": "Per-endpoint health over the metrics window",
            "responses": {**ok({"type": "object", "required": ["metrics"], "properties": {"metrics": {
                "type": "object", "additionalProperties": ref("EndpointMetrics")}}}), "400": error(400)},
        }},
        "/aiops/analyze": {"post": {
            "summary": "Run one detection cycle now and return its summary",
            "description": "The worker runs it and this call waits for its answer (503 if none comes "
                           "in time); with no worker alive this process runs it (409 if another cycle "
                           "holds the lease).",
            "responses": {**ok(ref("CycleSummary")), "400": error(400),
                          "409": error(409, "No worker is alive and another cycle is running; try again"),
                          "503": error(503, "The worker did not answer in time; try again")},
            "x-mutation": True,
        }},
    }


def _product_paths() -> dict:
    return {
        "/health": {"get": {
            "summary": "Liveness, and what is open to anyone who can reach the server",
            "responses": {**ok(ref("Health")), "400": error(400)}, "x-open": True,
        }},
        "/metrics": {"get": {
            "summary": "The service's own Prometheus metrics (every process's, and store gauges)",
            "responses": {"200": {"description": "Prometheus text, or OpenMetrics if the Accept header asks",
                                  "content": {"text/plain": TEXT, "application/openmetrics-text": TEXT}},
                          "400": error(400)},
        }},
        "/telemetry/health": {"get": {
            "summary": "The OTLP export's state (AIOPS_EXPORT_OTLP_ENDPOINT), over every process",
            "description": "Always 200: status healthy, degraded or failing, with the issues and the "
                           "resilience figures (the same values as aiops_export_* on /metrics).",
            "responses": {**ok(ref("TelemetryHealth")), "400": error(400)},
        }},
        "/openapi.json": {"get": {
            "summary": "This document",
            "responses": {**ok({"type": "object", "required": ["openapi", "paths"]}), "400": error(400)},
        }},
        "/v1/traces": _ingest("trace", "spans", "OtlpTraces", "OtlpResponse"),
        "/v1/logs": _ingest("log", "log records", "OtlpLogs", "OtlpLogsResponse"),
    }


def _ingest(signal: str, records: str, request: str, response: str) -> dict:
    """``POST /v1/traces`` or ``/v1/logs``: one OTLP/HTTP contract."""
    return {"post": {
        "summary": f"OTLP/HTTP {signal} ingest (protobuf or JSON, gzip or deflate)",
        "description": "Status codes follow the OTLP/HTTP spec: 400 is never retried, 503 is (with "
                       "Retry-After). Error bodies are a google.rpc.Status in the request's encoding, "
                       "except a 415 for a content type that is not OTLP's (then the JSON error). The "
                       "body may be compressed: Content-Encoding gzip or deflate.",
        "requestBody": {"required": True, "content": {
            PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
            JSON: {"schema": ref(request)}}},
        "responses": {
            "200": _otlp(f"Stored (partialSuccess names the {records} refused)", ref(response)),
            "400": _otlp(f"Undecodable, or every one of its {records} invalid; or an untrusted Host",
                         ref("RpcStatus")),
            "401": _otlp("The ingest token is missing or wrong", ref("RpcStatus")),
            "413": _otlp(f"Over AIOPS_OTLP_MAX_BYTES after decompression, or too many {records} or items",
                         ref("RpcStatus")),
            "415": {"description": "Not an OTLP content type (JSON error), or an unknown encoding",
                    "content": {JSON: {"schema": {"anyOf": [ref("Error"), ref("RpcStatus")]}},
                                PROTOBUF: {"schema": {"type": "string", "format": "binary"}}}},
            "503": {**_otlp("Overloaded or the store is down: retry after Retry-After", ref("RpcStatus")),
                    "headers": {"Retry-After": {"schema": {"type": "string"}}}},
        },
        "x-ingest": True,
    }}


def _otlp(text: str, json_schema: dict) -> dict:
    return {"description": text, "content": {JSON: {"schema": json_schema},
                                             PROTOBUF: {"schema": {"type": "string", "format": "binary"}}}}


def _secure(operation: dict, settings: Settings) -> dict:
    """Security and the statuses it adds, from this server's settings; the x- markers go."""
    mutation = operation.pop("x-mutation", False)
    ingest = operation.pop("x-ingest", False)
    open_to_all = operation.pop("x-open", False)
    responses = operation["responses"]
    responses["414"] = TOO_LONG
    if ingest:
        token = settings.ingest_token_required
        operation["security"] = [{"ingestToken": []}, {"ingestHeader": []}] if token else []
        if not token:
            responses.pop("401")
        return operation
    requirements = []
    if mutation:
        responses["403"] = error(403)
        responses["413"] = error(413, "The body is over AIOPS_API_MAX_BODY_BYTES")
        if settings.api_token:
            requirements = [{"apiToken": []}]
    elif settings.protect_reads and not open_to_all:
        requirements = [{"apiToken": []}, {"readBasic": []}]
    if "requestBody" in operation and not mutation:
        responses["413"] = error(413, "The body is over AIOPS_MAX_BODY_BYTES")
    if requirements:
        responses["401"] = error(401)
    operation["security"] = requirements
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def add_paths(app: Flask, paths: dict, schemas: dict | None = None) -> None:
    """Describe another package's routes (the demo's) in this app's document.

    Operations may carry ``x-mutation`` (guarded by ``require_token``) or
    ``x-open`` (never behind ``AIOPS_PROTECT_READS``); :func:`document` turns
    them into security requirements and the statuses those add.
    """
    extra = app.extensions.setdefault("aiops_openapi_extra", {"paths": {}, "schemas": {}})
    extra["paths"].update(paths)
    extra["schemas"].update(schemas or {})


def document(app: Flask) -> dict:
    """The document for ``app``: the operations whose routes it has, secured as it is configured."""
    extra = app.extensions.get("aiops_openapi_extra", {"paths": {}, "schemas": {}})
    endpoints = {(method.lower(), _openapi_path(rule.rule)): rule.endpoint
                 for rule in app.url_map.iter_rules() for method in rule.methods}
    paths = {}
    ours = {**_product_paths(), **_incident_paths(), **_notification_paths(), **_log_paths(),
            **_detection_paths()}
    for path, item in {**ours, **extra["paths"]}.items():
        if all((method, path) in endpoints for method in item):
            paths[path] = {method: {"operationId": endpoints[method, path],
                                    **_secure(copy.deepcopy(op),
                                            settings_of(app))} for method, op in item.items()}
    return {
        "openapi": "3.1.0",
        "info": {"title": "AIOps", "version": VERSION,
                 "description": "Incidents found in traces, with their root cause; OTLP ingest; the demo "
                                "shop and its fault injection when the demo is on. Every 4xx/5xx is "
                                '{"error": "<status name>", "message": "..."} (OTLP ingest: a '
                                "google.rpc.Status; a 414, the HTTP server's own page)."},
        "paths": paths,
        "components": {"schemas": {**SCHEMAS, **extra["schemas"]}, "securitySchemes": {
            "apiToken": {"type": "http", "scheme": "bearer",
                         "description": "AIOPS_API_TOKEN: mutations, and reads with AIOPS_PROTECT_READS"},
            "readBasic": {"type": "http", "scheme": "basic",
                          "description": "AIOPS_API_TOKEN as the password (any user), for browsers"},
            "ingestToken": {"type": "http", "scheme": "bearer",
                            "description": "AIOPS_INGEST_TOKEN (else AIOPS_API_TOKEN) for /v1/*"},
            "ingestHeader": {"type": "apiKey", "in": "header", "name": "X-AIOps-Token",
                             "description": "the ingest token in a header of its own"},
        }},
    }


def _openapi_path(rule: str) -> str:
    """``/aiops/incidents/<incident_id>`` -> ``/aiops/incidents/{incident_id}``."""
    out = []
    for part in rule.split("/"):
        if part.startswith("<") and part.endswith(">"):
            part = "{" + part[1:-1].rpartition(":")[2] + "}"
        out.append(part)
    return "/".join(out)


@bp.get("/openapi.json")
def openapi_json():
    app = current_app._get_current_object()
    if "aiops_openapi" not in app.extensions:
        app.extensions["aiops_openapi"] = document(app)
    return jsonify(app.extensions["aiops_openapi"])
