"""What fails, read from the evidence spans carry: the pure classification of failure patterns.

The texts are the ones real libraries write (CPython, requests/urllib3, SQLAlchemy, the JVM,
PostgreSQL), never the demo's own: the rules must hold for any system.
"""

from __future__ import annotations

import pytest

from aiops.detection import patterns
from aiops.detection.rules import window_stats
from tests.support.factories import client, span

EXHAUSTION = [
    ("MemoryError", ""),
    ("java.lang.OutOfMemoryError", "Java heap space"),
    (
        "sqlalchemy.exc.TimeoutError",
        "QueuePool limit of size 5 overflow 10 reached, connection timed out, "
        "timeout 30.00 (Background on this error at: https://sqlalche.me/e/20/3o7r)",
    ),
    ("OSError", "[Errno 24] Too many open files"),
    ("OSError", "[Errno 28] No space left on device: '/var/tmp/x'"),
    ("psycopg.OperationalError", "FATAL: sorry, too many clients already"),
    (
        "java.sql.SQLTransientConnectionException",
        "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
    ),
    (None, "write /data/log: no space left on device"),
]
INVALID = [
    ("json.decoder.JSONDecodeError", "Expecting value: line 1 column 1 (char 0)"),
    ("requests.exceptions.JSONDecodeError", "Expecting value: line 1 column 1 (char 0)"),
    ("ValueError", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("pydantic_core._pydantic_core.ValidationError", "1 validation error for Order"),
    ("jsonschema.exceptions.ValidationError", "'id' is a required property"),
    ("com.fasterxml.jackson.core.JsonParseException", "Unexpected character ('<' (code 60))"),
    ("SyntaxError", "Unexpected token < in JSON at position 0"),
]
DEPENDENCY = [
    ("ConnectionRefusedError", "[Errno 111] Connection refused"),
    (
        "requests.exceptions.ConnectionError",
        "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /x (Caused by "
        "NewConnectionError('<urllib3.connection.HTTPConnection object>: Failed to establish a new "
        "connection: [Errno 111] Connection refused'))",
    ),
    ("socket.gaierror", "[Errno -2] Name or service not known"),
    (
        "urllib3.exceptions.NameResolutionError",
        "Failed to resolve 'api.example' ([Errno -3] Temporary failure in name resolution)",
    ),
    ("java.net.UnknownHostException", "api.example: nodename nor servname provided, or not known"),
    ("java.net.ConnectException", "Connection refused"),
]
NEITHER = [
    ("KeyError", "'sku'"),
    ("simulation.shop.InjectedFault", "injected error on payment"),
    ("werkzeug.exceptions.BadGateway", "502 Bad Gateway: payment answered 500"),
    (
        "requests.exceptions.ReadTimeout",
        "HTTPConnectionPool(host='x', port=80): Read timed out. (read timeout=2)",
    ),
    ("requests.exceptions.ConnectTimeout", "Connection to 10.0.0.1 timed out. (connect timeout=2)"),
    ("psycopg.errors.SerializationFailure", "could not serialize access due to concurrent update"),
    (None, None),
]


@pytest.mark.parametrize(("type_", "message"), EXHAUSTION)
def test_exhaustion_is_read_from_exception_types_and_messages(type_, message):
    assert patterns.of_text(type_, message) == "exhaustion"


@pytest.mark.parametrize(("type_", "message"), INVALID)
def test_invalid_responses_are_parse_and_schema_errors(type_, message):
    assert patterns.of_text(type_, message) == "invalid_response"


@pytest.mark.parametrize(("type_", "message"), DEPENDENCY)
def test_refused_connections_and_dns_errors_are_dependency_failures(type_, message):
    assert patterns.of_text(type_, message) == "dependency"


@pytest.mark.parametrize(("type_", "message"), NEITHER)
def test_other_failures_and_timeouts_name_no_pattern(type_, message):
    assert patterns.of_text(type_, message) is None


def test_the_resource_an_exhaustion_names():
    assert [patterns.resource(t, m) for t, m in EXHAUSTION[:5]] == [
        "memory",
        "memory",
        "connection pool",
        "file descriptors",
        "disk",
    ]


def test_text_is_bounded_before_it_is_matched():
    """A hostile megabyte message costs a bounded match; words past the bound are not read."""
    assert patterns.of_text("ValueError", "x" * 1_000_000 + " Too many open files") is None
    assert patterns.of_text("x" * 1_000_000) is None


def test_a_failed_call_to_an_uninstrumented_peer_is_a_dependency_failure():
    """A CLIENT span answered 503 with no SERVER span under it: an external peer seen only
    through its caller. The caller's failed SERVER span fails because of it."""
    pay = span(
        "POST /pay", status_code=502, exception_type="BadGateway", exception_message="gateway said 503"
    )
    call = client(pay, "POST", status_code=503)
    call.peer = "api.gateway.example"
    assert patterns.failed_calls([pay, call]) == {pay.span_id: "dependency"}
    stats = window_stats([pay, call])
    assert stats[("shop", "POST /pay")].pattern() == "dependency"


def test_a_5xx_from_an_instrumented_peer_is_the_peers_own_failure():
    """The callee's SERVER span is under the call: the callee failed, not a dependency of the caller."""
    checkout = span("checkout", status_code=502)
    call = client(checkout, "payment", status_code=500)
    payment = span(
        "payment", status_code=500, parent=call, exception_type="KeyError", exception_message="'x'"
    )
    assert patterns.failed_calls([checkout, call, payment]) == {}
    stats = window_stats([checkout, call, payment])
    assert stats[("shop", "checkout")].pattern() is None and stats[("shop", "payment")].pattern() is None


def test_a_timed_out_call_is_left_to_the_timeout_rules():
    checkout = span("checkout", status_code=504)
    call = client(
        checkout,
        "inventory",
        status_code=None,
        exception_type="requests.exceptions.ReadTimeout",
        exception_message="Read timed out. (read timeout=2.5)",
    )
    assert patterns.failed_calls([checkout, call]) == {}


def test_a_pattern_needs_half_the_failures():
    spans = [
        span("p", status_code=500, exception_type="OSError", exception_message="[Errno 28] No space left")
        for _ in range(2)
    ]
    spans += [
        span("p", status_code=500, exception_type="KeyError", exception_message="'a'") for _ in range(3)
    ]
    assert window_stats(spans)[("shop", "p")].pattern() is None
    spans += [
        span("p", status_code=500, exception_type="OSError", exception_message="[Errno 28] No space left")
    ]
    assert window_stats(spans)[("shop", "p")].pattern() == "exhaustion"
