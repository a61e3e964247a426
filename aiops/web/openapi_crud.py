"""The OpenAPI paths of an object the API lists, creates, reads, replaces and deletes by integer id
(``/aiops/slos``, ``/aiops/rules``): one shape, so each describes only its words and schemas.

For a noun ``slo`` in blueprint ``slos``: schemas ``SloBody``, ``Slo`` and ``SloList`` (its list under
``"slos"``), path parameter ``slo_id``, views ``slos.get_slo``, ``slos.update_slo``, ``slos.delete_slo``
(the links' operationIds). A wrong body is a 400 naming the field, a taken name a 409.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiops.web.openapi import JSON, error, ok
from aiops.web.openapi_schemas import ref


@dataclass(frozen=True)
class Words:
    """What the summaries say: ``name`` ("SLO"), ``label`` ("an SLO"), and each operation's summary."""

    name: str
    label: str
    listed: str
    create: str
    created: str
    one: str


def crud_paths(path: str, blueprint: str, noun: str, words: Words) -> dict:
    title = noun.capitalize()
    param = f"{noun}_id"
    by_id = {"name": param, "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}}
    wrong = error(400, "A field is wrong: the message starts with its name")
    taken = error(409, f"Another {words.name} has this name")
    missing = error(404, f"No {words.name} with this id")
    body = {"required": True, "content": {JSON: {"schema": ref(f"{title}Body")}}}

    def links(source: str) -> dict:
        return {op: {"operationId": f"{blueprint}.{op}", "parameters": {param: f"$response.body#{source}"}}
                for op in (f"get_{noun}", f"update_{noun}", f"delete_{noun}")}

    listed = ok(ref(f"{title}List"))
    listed["200"]["links"] = links(f"/{noun}s/0/id")
    item = ok(ref(title))
    return {
        path: {
            "get": {"summary": words.listed, "responses": {**listed, "400": error(400)}},
            "post": {"summary": words.create, "requestBody": body, "x-mutation": True,
                     "responses": {"201": {"description": words.created, "links": links("/id"),
                                           "content": {JSON: {"schema": ref(title)}}},
                                   "400": wrong, "409": taken}},
        },
        f"{path}/{{{param}}}": {
            "get": {"summary": words.one, "parameters": [by_id],
                    "responses": {**item, "400": error(400), "404": missing}},
            "put": {"summary": f"Replace {words.label} (the whole body, as for POST)", "parameters": [by_id],
                    "requestBody": body, "x-mutation": True,
                    "responses": {**item, "400": wrong, "404": missing, "409": taken}},
            "delete": {"summary": f"Delete {words.label}", "parameters": [by_id], "x-mutation": True,
                       "responses": {"204": {"description": "Deleted"}, "400": error(400), "404": missing}},
        },
    }
