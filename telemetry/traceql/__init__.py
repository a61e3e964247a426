"""A TraceQL subset (Grafana Tempo's query language) over the stored span rows. Pure: no Flask,
no database; ``docs/traceql.md`` is the user's reference.

:func:`parse` turns a query's text into a tree (:mod:`telemetry.traceql.nodes`) or raises
:class:`TraceQLError` naming the line and column; :func:`matching_spans` runs the tree over one
trace's span rows. The store's search (:mod:`telemetry.trace_queries`) and trace-query rules use
both.
"""

from telemetry.traceql.evaluate import (
    TraceFacts,
    field_value,
    fields_of,
    matching_spans,
    required,
    trace_facts,
)
from telemetry.traceql.parser import MAX_QUERY_CHARS, TraceQLError, parse

__all__ = [
    "MAX_QUERY_CHARS",
    "TraceFacts",
    "TraceQLError",
    "field_value",
    "fields_of",
    "matching_spans",
    "parse",
    "required",
    "trace_facts",
]
