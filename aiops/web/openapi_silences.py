"""The OpenAPI description of ``/aiops/silences``, added to the document with
:func:`aiops.web.openapi.add_paths`."""

from __future__ import annotations

from aiops.silences import matchers, specs
from aiops.silences.service import MAX_ID_CHARS
from aiops.web.openapi import JSON, NO_NUL, error, ok, query
from aiops.web.openapi_schemas import STRING, TIME, obj, ref

LABEL = ("an incident label: its root cause's service or endpoint (empty: the whole service), its kind, "
         "its severity")


def _matcher(names: list[str], value: dict, regex: bool) -> dict:
    """One shape of matcher; the document lists each, so a value the server would refuse (a
    severity that is none, a regex too long) is not schema-valid either."""
    return {**obj(("name", "value", "regex") if regex else ("name", "value"),
                  name={"enum": names, "description": LABEL}, value=value,
                  regex={"const": True} if regex else {"const": False, "default": False}),
            "additionalProperties": False}


TEXT = {"type": "string", "pattern": NO_NUL}
MATCHER = {"anyOf": [
    _matcher(["service", "endpoint"], {**TEXT, "maxLength": matchers.MAX_VALUE}, False),
    *(_matcher([name], {"enum": list(values)}, False) for name, values in matchers.VOCABULARY.items()),
    _matcher(list(matchers.NAMES), {**TEXT, "maxLength": matchers.MAX_REGEX,
                                    "description": "a regex that must match the whole value; refused when "
                                    "invalid, or when it repeats inside unbounded repetition, repeats an "
                                    "alternation without bound, or uses backreferences"}, True),
], "description": 'Alertmanager\'s {"name", "value", "regex"}: exact, or an anchored regex'}
SCHEMAS = {
    "Matcher": MATCHER,
    "SilenceBody": {
        **obj(("matchers", "ends_at"),
              matchers={"type": "array", "items": ref("Matcher"), "minItems": 1,
                        "maxItems": matchers.MAX_MATCHERS, "description": "all must match"},
              starts_at={**TIME, "description": "default: now"},
              ends_at={**TIME, "description": "after starts_at and now, within "
                                              f"{specs.MAX_DURATION / 86400:g} days of starts_at"},
              created_by={**TEXT, "maxLength": specs.MAX_CREATED_BY, "description": "default 'api'"},
              comment={**TEXT, "maxLength": specs.MAX_COMMENT}),
        "additionalProperties": False,
    },
    "Silence": obj(
        ("id", "matchers", "starts_at", "ends_at", "created_by", "comment", "created_at", "updated_at",
         "state"),
        id={"type": "string", "description": "a UUID"},
        matchers={"type": "array", "items": ref("Matcher")},
        starts_at=TIME, ends_at=TIME, created_by=STRING, comment=STRING, created_at=TIME, updated_at=TIME,
        state={"enum": list(specs.STATES), "description": "from the clock: pending before starts_at, "
                                                         "expired from ends_at"},
    ),
    "SilenceList": obj(("silences",), silences={"type": "array", "items": ref("Silence"),
                                                "description": "active, pending, then the newest expired"}),
}
SILENCE_ID = {"name": "silence_id", "in": "path", "required": True,
              "schema": {"type": "string", "maxLength": MAX_ID_CHARS}, "description": "a silence's id"}


def _linked(response: dict) -> dict:
    """Links from a silence in the answer to reading and expiring it (operationId = the Flask endpoint)."""
    links = {op: {"operationId": f"silences_api.{op}", "parameters": {"silence_id": "$response.body#/id"}}
             for op in ("get", "expire")}
    return {"200": {**response["200"], "links": links}}


def paths() -> dict:
    return {
        "/aiops/silences": {
            "get": {
                "summary": "Silences: active, pending, and the newest expired",
                "parameters": [query("state", {"enum": list(specs.STATES)}, "only silences in this state")],
                "responses": {**ok(ref("SilenceList")), "400": error(400)},
            },
            "post": {
                "summary": "Create a silence: incidents all its matchers match send no notification "
                           "from starts_at until ends_at",
                "requestBody": {"required": True, "content": {JSON: {"schema": ref("SilenceBody")}}},
                "responses": {**_linked(ok(ref("Silence"), "The silence created")),
                              "400": error(400, "A bad field (the message names it): no matchers, an "
                                                "unknown matcher name, an invalid or unsafe regex, a bad "
                                                "time, the end before the start, a string too long")},
                "x-mutation": True,
            },
        },
        "/aiops/silences/{silence_id}": {
            "get": {
                "summary": "One silence",
                "parameters": [SILENCE_ID],
                "responses": {**ok(ref("Silence")), "400": error(400),
                              "404": error(404, "No silence with this id")},
            },
            "delete": {
                "summary": "Expire a silence now (an expired one stays as it was)",
                "parameters": [SILENCE_ID],
                "responses": {**ok(ref("Silence"), "The silence, expired"), "400": error(400),
                              "404": error(404, "No silence with this id")},
                "x-mutation": True,
            },
        },
    }
