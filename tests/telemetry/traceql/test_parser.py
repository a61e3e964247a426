"""The TraceQL subset's parser: what it accepts, the tree it builds, and errors that say where."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings

from telemetry.traceql import TraceQLError, matching_spans, parse
from telemetry.traceql.nodes import (
    NIL,
    Always,
    And,
    Both,
    Comparison,
    Duration,
    Either,
    Field,
    Kind,
    Or,
    Spanset,
    Status,
)
from telemetry.traceql.parser import MAX_CONDITIONS, MAX_DEPTH, MAX_QUERY_CHARS, MAX_REGEX
from tests.support.factories import client, span
from tests.support.traceql_text import queries

ROUTE = Field("span", "http.route")
SERVICE = Field("resource", "service.name")
_ROOT = span("checkout", 120.0)
TRACE = [_ROOT, client(_ROOT, "payment", 100.0, status_code=503)]


def _one(text: str) -> Comparison:
    tree = parse(text)
    assert isinstance(tree, Spanset) and isinstance(tree.condition, Comparison)
    return tree.condition


@pytest.mark.parametrize("text, field, op, value", [
    ('{ span.http.route = "/x" }', ROUTE, "=", "/x"),
    ('{resource.service.name="shop"}', SERVICE, "=", "shop"),
    ('{ .attr != "a b" }', Field("", "attr"), "!=", "a b"),
    ('{ span.http.status_code >= 500 }', Field("span", "http.status_code"), ">=", 500),
    ('{ span.ratio < -1.5 }', Field("span", "ratio"), "<", -1.5),
    ('{ span.cache.hit = true }', Field("span", "cache.hit"), "=", True),
    ('{ span.optional = nil }', Field("span", "optional"), "=", NIL),
    ('{ event.exception.type = "ValueError" }', Field("event", "exception.type"), "=", "ValueError"),
    ('{ status = error }', Field("intrinsic", "status"), "=", Status("error")),
    ('{ span:status != ok }', Field("intrinsic", "status"), "!=", Status("ok")),
    ('{ kind = server }', Field("intrinsic", "kind"), "=", Kind("server")),
    ('{ name = "POST /checkout" }', Field("intrinsic", "name"), "=", "POST /checkout"),
    ('{ span:name = "a \\"quoted\\" name" }', Field("intrinsic", "name"), "=", 'a "quoted" name'),
    ('{ trace:rootService = "shop" }', Field("intrinsic", "trace:rootService"), "=", "shop"),
])
def test_comparisons(text, field, op, value):
    assert _one(text) == Comparison(field, op, value)


@pytest.mark.parametrize("literal, ms", [
    ("250ns", 250e-6), ("15us", 0.015), ("100ms", 100.0), ("1.5s", 1500.0), ("2m", 120_000.0),
    ("1h", 3_600_000.0),
])
def test_durations_in_every_unit_become_milliseconds(literal, ms):
    found = _one(f"{{ duration > {literal} }}")
    assert found.field == Field("intrinsic", "duration") and found.op == ">"
    assert found.value == Duration(pytest.approx(ms))


def test_regexes_are_compiled_and_match_the_whole_value():
    found = _one('{ span.http.route =~ "/api/.*" }')
    assert isinstance(found.value, re.Pattern) and found.value.pattern == "/api/.*"
    assert _one('{ name !~ "GET .*" }').op == "!~"


def test_and_binds_tighter_than_or_and_parentheses_group():
    a = Comparison(Field("intrinsic", "status"), "=", Status("error"))
    b = Comparison(SERVICE, "=", "shop")
    c = Comparison(Field("intrinsic", "kind"), "=", Kind("client"))
    text = '{ status = error || resource.service.name = "shop" && kind = client }'
    assert parse(text) == Spanset(Or(a, And(b, c)))
    text = '{ (status = error || resource.service.name = "shop") && kind = client }'
    assert parse(text) == Spanset(And(Or(a, b), c))


def test_spansets_combine_with_and_and_or():
    error = Spanset(Comparison(Field("intrinsic", "status"), "=", Status("error")))
    assert parse("{} && { status = error }") == Both(Spanset(Always()), error)
    assert parse("{ true } || { status = error }") == Either(Spanset(Always()), error)
    assert parse("({} || {status=error}) && {}") == Both(Either(Spanset(Always()), error), Spanset(Always()))


def test_multiline_queries():
    text = '{\n  resource.service.name = "shop" &&\n  status = error\n}'
    assert isinstance(parse(text).condition, And)


def _error(text: str) -> TraceQLError:
    with pytest.raises(TraceQLError) as caught:
        parse(text)
    return caught.value


@pytest.mark.parametrize("text, line, column, words", [
    ("{ span.a = }", 1, 12, "unexpected '}'"),
    ("status = error", 1, 1, "unexpected 'status'"),
    ('{ span.a = "x" }}', 1, 17, "unexpected '}'"),
    ("{\n  span.a = 1 &&\n  @ }", 3, 3, "unexpected '@'"),
    ('{ span.a = "x" ', 1, 16, "ends too early"),
    ("{ foo = 1 }", 1, 3, "unknown field 'foo'"),
    ("{ status = 1 }", 1, 12, "status is one of error, ok, unset"),
    ("{ status = bad }", 1, 12, "status is one of"),
    ("{ kind > server }", 1, 8, "kind can only be compared with = or !="),
    ("{ duration > 100 }", 1, 14, "needs a duration"),
    ("{ span.a = 10ms }", 1, 12, "is not a duration"),
    ("{ span.a =~ 5 }", 1, 13, "needs a string"),
    ("{ status =~ \"e.*\" }", 1, 10, "cannot be matched with a regex"),
    ('{ span.a =~ "(" }', 1, 13, "not a valid regex"),
    ('{ span.a =~ "(a+)+" }', 1, 13, "regex refused"),
    ("{ span.a > nil }", 1, 10, "nil can only be compared"),
    ("{ span.a = maybe }", 1, 12, "unexpected 'maybe'"),
    ("{ span.a = 9223372036854775808 }", 1, 12, "must fit in 64 bits"),
])
def test_errors_name_their_line_and_column(text, line, column, words):
    error = _error(text)
    assert (error.line, error.column) == (line, column), str(error)
    assert words in error.message
    assert f"(line {line}, column {column})" in str(error)
    lines = text.split("\n")
    assert error.offset == sum(len(x) + 1 for x in lines[: line - 1]) + column - 1
    assert error.to_dict() == {"message": error.message, "line": line, "column": column,
                               "offset": error.offset}


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_an_empty_query_is_an_error(text):
    assert "empty" in _error(text).message


def test_hostile_input_is_refused_before_parsing():
    assert "at most" in _error("{" + " " * MAX_QUERY_CHARS + "}").message
    deep = "(" * (MAX_DEPTH + 5) + "{}" + ")" * (MAX_DEPTH + 5)
    error = _error(deep)
    assert "nested" in error.message and error.column == MAX_DEPTH + 1
    many = "{ " + " && ".join(f"span.a{i} = {i}" for i in range(MAX_CONDITIONS + 1)) + " }"
    assert "comparisons" in _error(many).message
    assert f"at most {MAX_REGEX}" in _error('{ span.a =~ "' + "a" * (MAX_REGEX + 1) + '" }').message


def test_brackets_and_operators_inside_strings_do_not_count():
    text = '{ span.a = "' + "((({{{ = != =~" * 10 + '" }'
    assert _one(text).value.startswith("((({{{")


def test_deep_but_allowed_nesting_parses():
    text = "{ " + "(" * (MAX_DEPTH - 1) + "span.a = 1" + ")" * (MAX_DEPTH - 1) + " }"
    assert _one(text) == Comparison(Field("span", "a"), "=", 1)


@pytest.mark.parametrize("text", ["{ span.a = \"\x00\" }", "{ span.a = \"é\" }", "{ span.€ = 1 }", "{{}}",
                                  "{ () }", "{ span.a = \"x\" } &&", "|| {}", "{ span.a = 1 } { }"])
def test_odd_input_is_an_error_or_a_query_never_a_crash(text):
    try:
        parse(text)
    except TraceQLError as error:
        assert error.line >= 1 and error.column >= 1


@settings(max_examples=300, deadline=None)
@given(queries)
def test_any_text_parses_or_is_a_positioned_error(text):
    """Generated: the parser raises nothing but TraceQLError, whose position is inside the text, and
    a tree it returns runs over a trace without raising."""
    try:
        tree = parse(text)
    except TraceQLError as error:
        assert error.line >= 1 and error.column >= 1 and 0 <= error.offset <= len(text)
        return
    matching_spans(tree, TRACE)
