"""The demo's routes described for ``GET /openapi.json`` (registered only when the demo is on)."""

from __future__ import annotations

from aiops.web.openapi import JSON, error, ok, query
from aiops.web.openapi_schemas import BOOLEAN, INTEGER, NUMBER, STRING, TIME, nullable, obj, ref
from simulation.collector import MAX_COLLECTOR_SECONDS
from simulation.external import CALLERS, MODES, RESOURCES
from simulation.faults import (
    DEMO_ENDPOINTS,
    MAX_CPU_SECONDS,
    MAX_CPU_THREADS,
    MAX_DEGRADE_FACTOR,
    MAX_DELAY_MS,
    MAX_RAMP_S,
    NETWORK_ENDPOINTS,
)

ENDPOINT = {"type": "string", "enum": list(DEMO_ENDPOINTS)}
SCHEMAS = {
    "Fault": obj(
        ("endpoint", "delay_ms", "error_rate", "timeout", "network_delay_ms", "cpu_threads", "cpu_until",
         "degrade_factor", "degrade_ramp_s", "degrade_since", "stopped", "dependency", "exhaust", "invalid",
         "until"),
        endpoint=STRING, delay_ms=NUMBER, error_rate=NUMBER, timeout=BOOLEAN, network_delay_ms=NUMBER,
        cpu_threads=INTEGER, cpu_until=nullable(TIME), degrade_factor=NUMBER, degrade_ramp_s=NUMBER,
        degrade_since=nullable(TIME), stopped=BOOLEAN, dependency={"enum": [*MODES, None]},
        exhaust={"enum": [*RESOURCES, None]}, invalid=BOOLEAN, until=nullable(TIME),
    ),
    "Injected": obj(("injected",), injected=ref("Fault")),
}


def _fault(summary: str, params: list[dict], response: dict | None = None) -> dict:
    return {"post": {
        "summary": summary,
        "description": "Parameters in the query string (or, for those missing there, a JSON object body).",
        "parameters": params,
        "responses": {**ok(response or ref("Injected")), "400": error(400, "A parameter is missing or bad")},
        "x-mutation": True,
    }}


def _time_faults(endpoint: dict) -> dict:
    """The faults of the patterns told apart by time: a slow creep, and an endpoint gone silent."""
    return {
        "/simulate/degrade": _fault("Make an endpoint's latency creep up to factor x over ramp_s seconds", [
            endpoint,
            query("factor", {"type": "number", "minimum": 1, "maximum": MAX_DEGRADE_FACTOR, "default": 2},
                  "its latency at the end of the ramp, as a multiple of its normal latency"),
            query("ramp_s", {"type": "number", "minimum": 0, "maximum": MAX_RAMP_S, "default": 600},
                  "seconds from the injection to the full factor (0: at once)")]),
        "/simulate/stop": _fault("Stop an endpoint: its callers' connections are refused", [
            query("endpoint", {"enum": list(NETWORK_ENDPOINTS)}, "an endpoint the demo calls",
                  required=True)]),
    }


def _pattern_faults(endpoint: dict) -> dict:
    """The faults of the failure patterns (:mod:`simulation.external`)."""
    return {
        "/simulate/dependency": _fault("Make an endpoint's call to the demo's external peer fail", [
            query("endpoint", {"enum": list(CALLERS)}, "an endpoint that calls the external peer",
                  required=True),
            query("mode", {"enum": list(MODES)}, "connection refused, a DNS error, or a 503 from the peer",
                  required=True)]),
        "/simulate/exhaust": _fault("Make an endpoint fail with a resource's real error", [
            endpoint,
            query("resource", {"enum": list(RESOURCES)}, "a pool timeout, MemoryError, OSError(EMFILE) "
                  "or OSError(ENOSPC)", required=True)]),
        "/simulate/invalid": _fault("Make an endpoint answer 200 with a body its caller cannot parse", [
            query("endpoint", {"enum": list(NETWORK_ENDPOINTS)}, "an endpoint the demo calls",
                  required=True)]),
    }


def paths() -> dict:
    """``/simulate/*`` and the shop, for :func:`aiops.web.openapi.add_paths`."""
    ms = {"type": "number", "minimum": 0, "maximum": MAX_DELAY_MS}
    endpoint = query("endpoint", ENDPOINT, "the demo endpoint", required=True)
    shop_errors = {"500": error(500, "An error injected with /simulate/error"),
                   "502": error(502, "A call to another demo endpoint failed"),
                   "504": error(504, "A call to another demo endpoint timed out")}
    order = {"required": False, "content": {JSON: {"schema": {
        "type": "object", "properties": {"amount": {"type": "number"}}}}}}
    return {
        "/simulate/delay": _fault("Delay an endpoint's answers", [
            endpoint, query("duration", ms, "milliseconds", required=True)]),
        "/simulate/error": _fault("Make an endpoint fail with a 5xx at a rate", [
            endpoint, query("rate", {"type": "number", "minimum": 0, "maximum": 1}, "0..1", required=True)]),
        "/simulate/timeout": _fault("Make an endpoint hang past its caller's timeout", [endpoint]),
        "/simulate/network": _fault("Slow the network into an endpoint (its callers wait)", [
            query("endpoint", {"enum": list(NETWORK_ENDPOINTS)}, "an endpoint the demo calls", required=True),
            query("delay_ms", ms, "milliseconds", required=True)]),
        **_time_faults(endpoint),
        **_pattern_faults(endpoint),
        "/simulate/cpu": _fault("Busy threads in every process of the demo", [
            query("threads", {"type": "integer", "minimum": 1, "maximum": MAX_CPU_THREADS, "default": 1},
                   "per process"),
            query("duration", {"type": "number", "minimum": 1, "maximum": MAX_CPU_SECONDS},
                   "seconds (default: until cleared)")]),
        "/simulate/collector-failure": _fault(
            "Make the OTLP export's endpoint fail for a while (watch GET /telemetry/health)", [
                query("seconds", {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_COLLECTOR_SECONDS},
                      "how long every export fails", required=True)]),
        "/simulate/clear": _fault("Clear every fault, or one endpoint's ('*': the CPU hog)", [
            query("endpoint", {"enum": [*DEMO_ENDPOINTS, "*"]}, "only this endpoint's")],
            {"type": "object", "required": ["cleared"], "properties": {"cleared": {"type": "integer"}}}),
        "/simulate/remediate": {"post": {
            "summary": "The demo's remediation hook: clears the fault on the incident's root cause",
            "requestBody": {"required": True, "content": {JSON: {"schema": {
                "type": "object", "required": ["incident"],
                "properties": {"kind": {"description": "the incident's kind (not used here)"},
                               "incident": {"type": "object"}}}}}},
            "responses": {**ok(obj(("endpoints", "cleared"), endpoints={"type": "array", "items": STRING},
                                   cleared=INTEGER)),
                "400": error(400, "Not a remediation payload")},
            "x-mutation": True,
        }},
        "/simulate/faults": {"get": {
            "summary": "The faults in force",
            "responses": {**ok({"type": "object", "required": ["faults"], "properties": {
                "faults": {"type": "array", "items": ref("Fault")}}}), "400": error(400)},
        }},
        "/checkout": {"post": {"summary": "Demo shop: calls inventory and payment", "requestBody": order,
                               "responses": {**ok({"type": "object"}), "400": error(400), **shop_errors},
                               "x-open": True, "tags": ["demo shop"]}},
        "/payment": {"post": {"summary": "Demo shop: take a payment", "requestBody": order,
                              "responses": {**ok({"type": "object"}), "400": error(400), **shop_errors},
                              "x-open": True, "tags": ["demo shop"]}},
        "/inventory": {"get": {"summary": "Demo shop: stock levels",
                               "responses": {**ok({"type": "object"}), "400": error(400), **shop_errors},
                               "x-open": True, "tags": ["demo shop"]}},
    }


