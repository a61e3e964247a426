"""The failure patterns as incident kinds (aiops.incidents.reports.kind): what fails decides, before
how far it spread; timeouts recurring on the same edge are ``timeouts``; each pattern is explained
in the report and has its own recommendations. Pure: incidents are dicts shaped like the API's.
"""

from __future__ import annotations

import pytest

from aiops.incidents.reports import kind, report, with_report
from tests.support.factories import anomaly_dict as anomaly
from tests.support.factories import incident_dict as incident

LATER = "2026-01-20T10:31:15Z"


def failing(root: str, exception: str, pattern: str | None = None, spread: bool = True) -> dict:
    own = {
        **anomaly(root, "error", 1.0, 0.0, message=f"Error spike: 100% of 40 requests failed ({exception})"),
        "pattern": pattern,
    }
    caller = anomaly(
        "checkout",
        "error",
        1.0,
        0.0,
        message="Error spike: 100% of 40 requests failed (BadGateway: 502 Bad Gateway)",
    )
    return incident(root, own, *([caller] if spread else []))


@pytest.mark.parametrize(
    ("exception", "expected"),
    [
        ("requests.exceptions.ConnectionError: ... [Errno 111] Connection refused", "dependency"),
        ("OSError: [Errno 24] Too many open files", "exhaustion"),
        ("sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached", "exhaustion"),
        ("MemoryError: ", "exhaustion"),
        ("OSError: [Errno 28] No space left on device", "exhaustion"),
        (
            "requests.exceptions.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
            "invalid_response",
        ),
        ("KeyError: 'sku'", "cascading"),  # no pattern named: it spread, as before
    ],
)
def test_what_fails_decides_the_kind_before_how_far_it_spread(exception, expected):
    assert kind(failing("payment", exception)) == expected


def test_the_pattern_detection_stored_wins_over_the_message():
    """A 5xx from an uninstrumented peer names no exception: the stored pattern says dependency."""
    inc = failing("payment", "BadGateway: 502 Bad Gateway: gateway answered 503", pattern="dependency")
    assert kind(inc) == "dependency"
    assert with_report(inc)["kind"] == "dependency"


def test_only_the_roots_own_failures_name_the_pattern():
    """checkout's pattern (a call whose answer came late) does not rename payment's incident."""
    inc = incident(
        "payment",
        anomaly("payment", "error", 1.0, 0.0),
        {**anomaly("checkout", "error", 1.0, 0.0), "pattern": "dependency"},
    )
    assert kind(inc) == "cascading"


def test_a_log_line_that_says_so_names_the_pattern():
    inc = incident(
        "payment",
        anomaly(
            "payment",
            "error",
            12.0,
            0.0,
            message="Log pattern change: 12 "
            "ERROR/WARN lines (usual 0.0): write failed: No space left on device",
        ),
    )
    assert kind(inc) == "exhaustion"


def test_timeouts_in_two_cycles_on_the_same_edge_are_repeated_timeouts():
    once = incident("inventory", anomaly("inventory", "timeout", 7.0))
    assert kind(once) == "timeout"
    twice = incident(
        "inventory", anomaly("inventory", "timeout", 7.0), anomaly("inventory", "timeout", 5.0, at=LATER)
    )
    assert kind(twice) == "timeouts"
    spread = incident(
        "inventory",
        anomaly("inventory", "timeout", 7.0),
        anomaly("checkout", "timeout", 7.0),
        anomaly("inventory", "timeout", 5.0, at=LATER),
    )
    assert kind(spread) == "timeouts"
    assert (
        "Repeated timeouts" in report(twice)["summary"] and "2 detection cycles" in report(twice)["summary"]
    )


@pytest.mark.parametrize(
    ("exception", "pattern", "words"),
    [
        ("ConnectionError: [Errno 111] Connection refused", "dependency", ["Dependency failure", "refused"]),
        ("OSError: [Errno 24] Too many open files", "exhaustion", ["run out of file descriptors"]),
        (
            "sqlalchemy.exc.TimeoutError: QueuePool limit of size 1 overflow 0 reached",
            "exhaustion",
            ["run out of connection pool"],
        ),
        (
            "JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
            "invalid_response",
            ["could not parse", "Expecting value"],
        ),
    ],
)
def test_each_pattern_is_explained_and_has_its_own_recommendations(exception, pattern, words):
    rep = report(failing("payment", exception, spread=False))
    assert rep["kind"] == pattern
    for word in words:
        assert word in rep["summary"], rep["summary"]
    assert rep["recommendations"] and exception.split(":")[0] in rep["recommendations"][0]
    assert all(isinstance(r, str) and r for r in rep["recommendations"])
    others = {
        report(failing("payment", e, spread=False))["recommendations"][1]
        for e, p, _ in [
            ("ConnectionError: Connection refused", "dependency", 0),
            ("MemoryError: x", "exhaustion", 0),
            ("JSONDecodeError: Expecting value", "invalid_response", 0),
        ]
    }
    assert len(others) == 3  # not one generic list
