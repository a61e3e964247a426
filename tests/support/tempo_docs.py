"""The example answers of Grafana Tempo's HTTP API documentation, as the docs print them.

From grafana/tempo ``docs/sources/tempo/api_docs/_index.md`` ("Example of TraceQL search", "Example
of tags-based search") and ``docs/sources/tempo/api_docs/pushing-spans-with-http.md`` ("Retrieve
traces": ``/api/traces/<id>`` in its earlier version, ``/api/v2/traces/<id>`` now, and "Use TraceQL
to search for a trace"). The TraceQL search example lacks the ``}`` that closes its trace; it is
added here. The one-line answers are laid out over lines; their content is the docs'. Our
compatibility with Tempo is checked against these, not against a running Tempo.
"""

from __future__ import annotations

import json

TRACEQL_SEARCH = json.loads("""
{
  "traces": [
    {
      "traceID": "2f3e0cee77ae5dc9c17ade3689eb2e54",
      "rootServiceName": "shop-backend",
      "rootTraceName": "update-billing",
      "startTimeUnixNano": "1684778327699392724",
      "durationMs": 557,
      "spanSets": [
        {
          "spans": [
            {
              "spanID": "563d623c76514f8e",
              "startTimeUnixNano": "1684778327735077898",
              "durationNanos": "446979497",
              "attributes": [
                {
                  "key": "status",
                  "value": {
                    "stringValue": "error"
                  }
                }
              ]
            }
          ],
          "matched": 1
        }
      ]
    }
  ],
  "metrics": {
    "totalBlocks": 13
  }
}
""")

TAGS_SEARCH = json.loads("""
{
  "traces": [
    {
      "traceID": "d6e9329d67b6146a",
      "rootServiceName": "frontend",
      "rootTraceName": "/cart",
      "startTimeUnixNano": "1634727903545000000",
      "durationMs": 611
    },
    {
      "traceID": "1b1ba462b409200d",
      "rootServiceName": "frontend",
      "rootTraceName": "/cart",
      "startTimeUnixNano": "1634727775935000000",
      "durationMs": 611
    }
  ],
  "metrics": {
    "inspectedTraces": 3100,
    "inspectedBytes": "3811736",
    "totalBlocks": 3,
    "backendReads": "47",
    "backendBytes": "2415680",
    "additionalMetrics": {
      "cacheHits": "124",
      "cacheMisses": "18",
      "cacheBytes": "1396224"
    }
  }
}
""")

SEARCH_WITH_SPANSET = json.loads(
    '{"traces":[{"traceID":"5b8efff798038103d269b633813fc700","rootServiceName":"my.service",'
    '"rootTraceName":"I am a span!","startTimeUnixNano":"1694718625557000000","durationMs":10000,'
    '"spanSet":{"spans":[{"spanID":"eee19b7ec3c1b100","startTimeUnixNano":"1694718625557000000",'
    '"durationNanos":"10000000000","attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]}],'
    '"matched":1},"spanSets":[{"spans":[{"spanID":"eee19b7ec3c1b100","startTimeUnixNano":"1694718625557000000",'
    '"durationNanos":"10000000000","attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]}],'
    '"matched":1}]}],"metrics":{"inspectedBytes":"292781","completedJobs":1,"totalJobs":1}}')

TRACE_V1 = json.loads("""
{
  "batches": [
    {
      "resource": {
        "attributes": [
          {
            "key": "service.name",
            "value": {
              "stringValue": "my.service"
            }
          }
        ]
      },
      "scopeSpans": [
        {
          "scope": {
            "name": "my.library",
            "version": "1.0.0"
          },
          "spans": [
            {
              "traceId": "W47/95gDgQPSabYzgT/HAA==",
              "spanId": "7uGbfsPBsQA=",
              "name": "I am a span!",
              "kind": "SPAN_KIND_SERVER",
              "startTimeUnixNano": "1689969302000000000",
              "endTimeUnixNano": "1689970000000000000",
              "attributes": [
                {
                  "key": "my.span.attr",
                  "value": {
                    "stringValue": "some value"
                  }
                }
              ],
              "status": {}
            }
          ]
        }
      ]
    }
  ]
}
""")

# /api/v2/traces/<id>: the same resource spans, under "trace" and named resourceSpans.
TRACE_V2 = {"trace": {"resourceSpans": json.loads(json.dumps(TRACE_V1["batches"]))}}

# The ids of the span in the trace examples, as the docs' OTLP push wrote them (hex).
TRACE_ID, SPAN_ID = "5b8efff798038103d269b633813fc700", "eee19b7ec3c1b100"


def shape(value):
    """A JSON value's shape: objects by key, lists by their first item, scalars by type name."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__
