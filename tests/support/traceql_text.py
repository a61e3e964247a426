"""Hypothesis strategies for TraceQL text: token soup that is often valid and often almost valid,
and any text at all (for the parser's property tests and the route fuzzing)."""

from __future__ import annotations

from hypothesis import strategies as st

TOKENS = ["{", "}", "(", ")", "&&", "||", "=", "!=", ">", ">=", "<", "<=", "=~", "!~", "status", "error",
          "ok", "unset", "kind", "server", "client", "name", "duration", "span:duration", "trace:duration",
          "trace:rootService", "span.http.route", "resource.service.name", ".x", "event.exception.type",
          "nil", "true", "false", "100ms", "1.5s", "-3", "200", "9223372036854775808", '"shop"', '"/pay.*"',
          '"(a+)+"', '"("', '"\\""', "1mx", "@", "\n", " "]
token_soup = st.lists(st.sampled_from(TOKENS), max_size=24).map(" ".join)
queries = st.one_of(token_soup, st.text(max_size=60))
