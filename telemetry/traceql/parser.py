"""TraceQL text -> :mod:`telemetry.traceql.nodes`, with Lark (an LALR(1) grammar).

Why a grammar library and not regexes: the language nests (``( )`` inside ``{ }``, spansets
joined by ``&&`` and ``||``, operator precedence), and a grammar states that once, in the
:data:`GRAMMAR` below, with errors that come with a line and a column for free. Lark is pure
Python with no dependencies, and its LALR parser runs in linear time without recursion, so the
input bounds below are what keeps a hostile query cheap:

- at most :data:`MAX_QUERY_CHARS` characters, at most :data:`MAX_DEPTH` levels of ``(``/``{``
  and at most :data:`MAX_CONDITIONS` comparisons (the tree is walked recursively later);
- a regex (``=~``, ``!~``) of at most :data:`MAX_REGEX` characters, refused when its shape can take
  exponential time (:mod:`telemetry.regexes`).

Every error is a :class:`TraceQLError` that names where it is (line, column and offset).
"""

from __future__ import annotations

import functools
import re

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from telemetry import regexes
from telemetry.traceql import nodes
from telemetry.traceql.nodes import Comparison, Duration, Field, Kind, Status

MAX_QUERY_CHARS = 2_000
MAX_DEPTH = 16
MAX_CONDITIONS = 64
MAX_REGEX = 256

GRAMMAR = r"""
?start: query
?query: query_and | query "||" query_and      -> either
?query_and: query_atom | query_and "&&" query_atom -> both
?query_atom: spanset | "(" query ")"
spanset: "{" [expr] "}"
?expr: expr_and | expr "||" expr_and           -> or_
?expr_and: term | expr_and "&&" term           -> and_
?term: comparison | "(" expr ")" | TRUE        -> always
comparison: field OP value
field: ATTRIBUTE | INTRINSIC | NAME
value: STRING | DURATION | NUMBER | NAME

TRUE.3: "true" /(?=\s*[}&|)])/
ATTRIBUTE.2: /(span|resource|event)?\.[A-Za-z0-9_][A-Za-z0-9_.\-\/]*/
INTRINSIC.2: /(span|trace):[A-Za-z]+/
DURATION.2: /-?[0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h)(?![A-Za-z0-9_])/
NUMBER: /-?[0-9]+(\.[0-9]+)?/
STRING: /"(\\.|[^"\\\n])*"/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
OP: "=~" | "!~" | "!=" | ">=" | "<=" | "=" | ">" | "<"
%ignore /\s+/
"""

# Unscoped and scoped intrinsics -> the canonical name the evaluator knows.
INTRINSICS = {
    "name": "name", "status": "status", "duration": "duration", "kind": "kind",
    "span:name": "name", "span:status": "status", "span:duration": "duration", "span:kind": "kind",
    "span:id": "span:id", "span:parentID": "span:parentID",
    "trace:id": "trace:id", "trace:duration": "trace:duration",
    "trace:rootName": "trace:rootName", "trace:rootService": "trace:rootService",
}
STATUSES = ("error", "ok", "unset")
KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_UNITS_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_EQUALITY = ("=", "!=")
_ORDER = ("=", "!=", ">", ">=", "<", "<=")
_REGEX = ("=~", "!~")


class TraceQLError(ValueError):
    """A query that cannot be run, with where: ``line``/``column`` (1-based) and ``offset`` (0-based)."""

    def __init__(self, message: str, line: int = 1, column: int = 1, offset: int = 0):
        self.message, self.line, self.column, self.offset = message, line, column, offset
        super().__init__(f"{message} (line {line}, column {column})")

    def to_dict(self) -> dict:
        return {"message": self.message, "line": self.line, "column": self.column, "offset": self.offset}


def _at(token: Token, message: str) -> TraceQLError:
    return TraceQLError(message, token.line or 1, token.column or 1, token.start_pos or 0)


def _where(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _unquote(token: Token) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _regex(token: Token) -> re.Pattern:
    pattern = _unquote(token)
    if len(pattern) > MAX_REGEX:
        raise _at(token, f"a regex must be at most {MAX_REGEX} characters")
    try:
        return regexes.checked(pattern)
    except ValueError as exc:
        raise _at(token, str(exc)) from None


def _value_for(field: Field, op: Token, value: Token):
    """The literal as the field needs it, or an error naming the literal's position."""
    kind = value.type
    if op in _REGEX:
        if kind != "STRING":
            raise _at(value, f"{op} needs a string (a regex)")
        if field.name in ("status", "kind", "duration", "trace:duration"):
            raise _at(op, f"{field} cannot be matched with a regex")
        return _regex(value)
    if field.name in ("status", "kind"):
        allowed = STATUSES if field.name == "status" else KINDS
        if kind != "NAME" or value not in allowed:
            raise _at(value, f"{field} is one of {', '.join(allowed)}")
        if op not in _EQUALITY:
            raise _at(op, f"{field} can only be compared with = or !=")
        return Status(str(value)) if field.name == "status" else Kind(str(value))
    if field.name in ("duration", "trace:duration"):
        if kind != "DURATION":
            raise _at(value, f"{field} needs a duration such as 100ms (ns, us, ms, s, m, h)")
        number = re.match(r"-?[0-9.]+", value).group()
        return Duration(float(number) * _UNITS_MS[value[len(number):]])
    if kind == "DURATION":
        raise _at(value, f"{field} is not a duration")
    if kind == "STRING":
        return _unquote(value)
    if kind == "NUMBER":
        if "." in value:
            return float(value)
        if not -(2**63) <= int(value) < 2**63:
            raise _at(value, "an integer must fit in 64 bits")
        return int(value)
    if value in ("true", "false"):
        return value == "true"
    if value == "nil":
        if op not in _EQUALITY:
            raise _at(op, "nil can only be compared with = or !=")
        return nodes.NIL
    raise _at(value, f"unexpected {str(value)!r}: a value is a \"string\", a number, a duration, true, false "
                     "or nil")


@v_args(inline=True)
class _ToNodes(Transformer):
    def spanset(self, condition=None):
        return nodes.Spanset(condition if condition is not None else nodes.Always())

    def both(self, left, right):
        return nodes.Both(left, right)

    def either(self, left, right):
        return nodes.Either(left, right)

    def and_(self, left, right):
        return nodes.And(left, right)

    def or_(self, left, right):
        return nodes.Or(left, right)

    def always(self, _token):
        return nodes.Always()

    def field(self, token: Token) -> Field:
        if token.type == "ATTRIBUTE":
            scope, _, name = token.partition(".")
            return Field(scope, name)
        canonical = INTRINSICS.get(str(token))
        if canonical is None:
            raise _at(token, f"unknown field {str(token)[:40]!r}: an intrinsic ("
                             "name, status, duration, kind, span:id, span:parentID, trace:id, "
                             "trace:duration, trace:rootName, trace:rootService) or an attribute "
                             "(span.x, resource.x, .x)")
        return Field("intrinsic", canonical)

    def value(self, token: Token) -> Token:
        return token

    def comparison(self, field: Field, op: Token, value: Token) -> Comparison:
        return Comparison(field, str(op), _value_for(field, op, value))


_STRINGS = re.compile(r'"(\\.|[^"\\])*"')
_OPERATORS = re.compile(r"=~|!~|!=|>=|<=|=|>|<")


def _check_shape(text: str) -> None:
    """Bounds on the raw text: its length, how deep it nests, how many comparisons it has."""
    if len(text) > MAX_QUERY_CHARS:
        raise TraceQLError(f"a query must be at most {MAX_QUERY_CHARS} characters",
                           *_where(text, MAX_QUERY_CHARS), MAX_QUERY_CHARS)
    bare = _STRINGS.sub(lambda m: " " * len(m.group()), text)  # what strings hold does not count
    depth = 0
    for offset, char in enumerate(bare):
        if char in "({":
            depth += 1
            if depth > MAX_DEPTH:
                raise TraceQLError(f"nested more than {MAX_DEPTH} levels deep", *_where(text, offset), offset)
        elif char in ")}":
            depth -= 1
    for count, found in enumerate(_OPERATORS.finditer(bare), 1):
        if count > MAX_CONDITIONS:
            offset = found.start()
            raise TraceQLError(f"more than {MAX_CONDITIONS} comparisons", *_where(text, offset), offset)


@functools.cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=False, cache=False)


def _syntax_error(text: str, exc: UnexpectedInput) -> TraceQLError:
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        return TraceQLError("the query ends too early (a '}' or a value missing?)", *_where(text, len(text)),
                            len(text))
    offset = exc.pos_in_stream if exc.pos_in_stream is not None else 0
    if isinstance(exc, UnexpectedCharacters):
        found = repr(text[offset: offset + 1])
    else:
        found = repr(str(exc.token)[:40])
    return TraceQLError(f"unexpected {found}", exc.line or 1, exc.column or 1, offset)


@functools.lru_cache(maxsize=256)
def parse(text: str) -> nodes.Query:
    """The query tree of a TraceQL text (the subset in ``docs/traceql.md``), or :class:`TraceQLError`."""
    if not isinstance(text, str) or not text.strip():
        raise TraceQLError("the query is empty: a spanset filter such as { status = error }")
    _check_shape(text)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    try:
        return _ToNodes().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, TraceQLError):
            raise exc.orig_exc from None
        raise
