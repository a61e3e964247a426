"""Incident reports (aiops.incidents.reports): kind, plain-language summary, what to look at first.

Pure unit tests: the incidents are literal dicts shaped like ``Incident.to_dict()``.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime

import pytest

from aiops.incidents.reports import kind, report
from tests.support.factories import FIRST, TRACE
from tests.support.factories import anomaly_dict as anomaly
from tests.support.factories import incident_dict as incident

FIRST_TS = datetime(2026, 1, 20, 10, 30, 15, tzinfo=UTC).timestamp()


def latency_incident(**kw):
    """payment got slow; checkout, its caller, is slow because of it (two cycles)."""
    return incident(
        "payment",
        anomaly("payment", "latency", 1100.0, 180.0),
        anomaly("checkout", "latency", 1350.0, 260.0),
        anomaly("payment", "latency", 1242.0, 180.0, at="2026-01-20T10:34:15Z"),
        **kw,
    )


def errors_incident(**kw):
    kw.setdefault("title", "inventory errors 50% of 40 requests")
    kw.setdefault("issue", "Error spike: 50% of 40 requests failed (KeyError: sku)")
    return incident(
        "inventory",
        anomaly("inventory", "error", 0.5, 0.01,
                message="Error spike: 50% of 40 requests failed (KeyError: sku)"),
        **{"affected": ["inventory"], **kw},
    )


def timeout_incident(**kw):
    kw.setdefault("title", "inventory timeouts (7 calls)")
    kw.setdefault("issue", "Timeout: 7 calls to it timed out")
    kw.setdefault("affected", ["inventory"])
    return incident("inventory", anomaly("inventory", "timeout", 7.0, count=12), **kw)


def cascading_incident(**kw):
    """payment times out; checkout, which calls it, now fails its own requests."""
    kw.setdefault("title", "payment timeouts (9 calls)")
    kw.setdefault("issue", "Timeout: 9 calls to it timed out")
    return incident(
        "payment",
        anomaly("payment", "timeout", 9.0, count=20),
        anomaly("checkout", "error", 0.45, 0.0, count=40,
                message="Error spike: 45% of 40 requests failed (HTTPError: 504 Gateway Timeout)"),
        **kw,
    )


# -- kind -----------------------------------------------------------------------------------------


def test_kind_latency_errors_timeout_from_the_roots_own_anomaly():
    assert kind(latency_incident()) == "latency"
    assert kind(errors_incident()) == "errors"
    assert kind(timeout_incident()) == "timeout"


def test_kind_is_cascading_when_another_endpoint_fails():
    assert kind(cascading_incident()) == "cascading"
    # A caller that times out (not just slows down) is a spread failure too.
    inc = incident("payment", anomaly("payment", "latency", 1242.0, 180.0),
                   anomaly("checkout", "timeout", 4.0))
    assert kind(inc) == "cascading"


def test_kind_is_cascading_when_anomalies_cover_two_services():
    inc = incident("payment",
                   anomaly("payment", "latency", 1242.0, 180.0, service="payments-api"),
                   anomaly("checkout", "latency", 1400.0, 250.0, service="storefront"),
                   service="payments-api")
    assert kind(inc) == "cascading"


def test_kind_latency_on_callers_of_the_same_service_is_not_cascading():
    # Callers slowing down behind a slow callee is the normal shape of a latency incident.
    assert kind(latency_incident()) == "latency"


def test_kind_errors_on_the_root_alone_are_not_cascading_even_when_repeated():
    inc = errors_incident()
    inc["anomalies"].append(anomaly("inventory", "error", 0.6, 0.01))
    inc["anomalies"].append(anomaly("inventory", "latency", 900.0, 40.0))
    assert kind(inc) == "errors"


def test_kind_uses_the_first_anomaly_when_the_root_has_none_of_its_own():
    # Traces blame payment for checkout's latency; payment itself looked normal.
    inc = incident("payment", anomaly("checkout", "latency", 1400.0, 250.0))
    assert kind(inc) == "latency"
    # ...but an error elsewhere than the root is a failure that spread.
    inc = incident("payment", anomaly("checkout", "error", 0.6, 0.0))
    assert kind(inc) == "cascading"


def test_kind_unknown_without_anomalies():
    assert kind(incident("payment")) == "unknown"
    no_key = incident("payment")
    del no_key["anomalies"]
    assert kind(no_key) == "unknown"


# -- summary --------------------------------------------------------------------------------------


def sentences(text):
    return [s for s in re.split(r"(?<=\.)\s+(?=[A-Z])", text) if s]


def test_latency_summary_says_where_how_bad_since_when_and_who_else():
    rep = report(latency_incident(), now=FIRST_TS + 20 * 60)
    s = rep["summary"]
    assert rep["kind"] == "latency"
    assert s.startswith("payment (shop) is slow: 1242 ms on average, 6.9x its usual 180 ms.")
    assert f"started at {FIRST}" in s
    assert "still ongoing after 20 min" in s
    assert "last seen 2026-01-20T10:34:15Z" in s
    assert "also affected: checkout (slow)" in s
    assert "Seen in 3 detection cycles." in s
    assert "recurred" not in s
    assert 1 <= len(sentences(s)) <= 3


def test_summary_without_now_counts_up_to_last_seen_so_it_is_stable():
    inc = latency_incident()
    assert "still ongoing after 4 min" in report(inc)["summary"]
    assert report(inc) == report(copy.deepcopy(inc))


def test_latency_summary_mentions_a_much_higher_peak():
    inc = incident("payment", anomaly("payment", "latency", 2400.0, 180.0),
                   anomaly("payment", "latency", 900.0, 180.0), affected=["payment"])
    s = report(inc)["summary"]
    assert "900 ms on average, 5.0x its usual 180 ms (peak 2400 ms)" in s


def test_errors_summary_gives_the_rate_as_percent_against_normal_and_the_exception():
    s = report(errors_incident())["summary"]
    assert s.startswith("inventory (shop) is failing 50% of its 40 requests (normally 1%)")
    assert "KeyError: sku" in s
    assert "also affected" not in s  # nothing but the root


def test_timeout_summary_counts_the_timed_out_calls():
    s = report(timeout_incident())["summary"]
    assert s.startswith("inventory (shop) is timing out: 7 timed-out calls")


def test_cascading_summary_names_the_root_and_the_callers_it_took_down():
    s = report(cascading_incident())["summary"]
    assert s.startswith("Cascading failure from payment (shop), which is timing out: 9 timed-out calls")
    assert "also affected: checkout (errors)" in s


def test_summary_blamed_root_without_own_anomaly_says_traces_point_to_it():
    inc = incident("payment", anomaly("checkout", "latency", 1400.0, 250.0))
    s = report(inc)["summary"]
    assert "checkout (shop) is slow: 1400 ms on average, 5.6x its usual 250 ms" in s
    assert "traces point to payment (shop) as the cause" in s


def test_resolved_summary_says_when_and_after_how_long():
    inc = latency_incident(status="resolved", resolved_at="2026-01-20T11:45:15Z")
    s = report(inc, now=FIRST_TS + 86400)["summary"]
    assert f"started at {FIRST} and was resolved at 2026-01-20T11:45:15Z after 1 h 15 min" in s
    assert "ongoing" not in s


def test_acknowledged_incident_is_still_ongoing():
    s = report(latency_incident(status="acknowledged"), now=FIRST_TS + 30)["summary"]
    assert "still ongoing after under a minute (acknowledged; last seen" in s


def test_summary_says_how_often_it_recurred():
    s = report(latency_incident(reopen_count=2, seen_cycles=1))["summary"]
    assert "Seen in 1 detection cycle; it has recurred twice after being resolved." in s
    s = report(latency_incident(reopen_count=3, related_to="INC-1768900000-4"))["summary"]
    assert "recurred 3 times" in s
    assert "INC-1768900000-4" in s
    assert 1 <= len(sentences(s)) <= 3


def test_unknown_summary_falls_back_to_the_recorded_issue():
    rep = report(incident("payment", issue="Latency spike: 1242ms (baseline: 180ms)"))
    assert rep["kind"] == "unknown"
    assert rep["summary"].startswith("payment (shop): Latency spike: 1242ms (baseline: 180ms).")
    assert 3 <= len(rep["recommendations"]) <= 5
    assert any("payment" in r for r in rep["recommendations"])


def test_report_keeps_telemetry_text_verbatim_for_the_templates_to_escape():
    hostile = "<script>alert(1)</script> & co"
    inc = errors_incident(issue=hostile)
    inc["anomalies"][0]["message"] = f"Error spike: 50% of 40 requests failed (ValueError: {hostile})"
    rep = report(inc)
    assert hostile in rep["summary"]
    assert any(hostile in r for r in rep["recommendations"])
    assert "&amp;" not in rep["summary"] and "&lt;" not in rep["summary"]


def test_report_tolerates_sparse_incidents():
    rep = report({"id": "INC-1", "root_cause": {}, "anomalies": []})
    assert rep["kind"] == "unknown"
    assert rep["summary"]
    assert 3 <= len(rep["recommendations"]) <= 5


# -- recommendations ------------------------------------------------------------------------------


ALL = {
    "latency": latency_incident,
    "errors": errors_incident,
    "timeout": timeout_incident,
    "cascading": cascading_incident,
}


@pytest.mark.parametrize("expected", list(ALL))
def test_three_to_five_plain_recommendations_that_name_the_root(expected):
    inc = ALL[expected]()
    rep = report(inc)
    assert rep["kind"] == expected
    recs = rep["recommendations"]
    assert 3 <= len(recs) <= 5
    assert all(isinstance(r, str) and r.strip() for r in recs)
    root = inc["root_cause"]["endpoint"]
    assert root in recs[0]
    assert sum(root in r for r in recs) >= 3
    assert not any(marker in r for r in recs for marker in ("<", "**", "`"))


def test_recommendations_differ_per_kind():
    recs = {k: tuple(report(make())["recommendations"]) for k, make in ALL.items()}
    assert len(set(recs.values())) == len(recs)


def test_latency_recommendations_cover_deploys_dependencies_waterfall_saturation_gc():
    text = " ".join(report(latency_incident())["recommendations"])
    for word in ("deploys", "waterfall", TRACE, "database", "connection pools", "CPU", "garbage-collection"):
        assert word in text


def test_errors_recommendations_quote_the_exception_and_suggest_rollback():
    recs = report(errors_incident())["recommendations"]
    assert "KeyError: sku" in recs[0]
    assert TRACE in recs[0]
    text = " ".join(recs)
    assert "roll it back" in text
    assert "dependencies" in text


def test_errors_recommendations_without_a_recorded_exception_point_at_the_spans():
    inc = errors_incident()
    inc["anomalies"][0]["message"] = "Error spike: 50% of 40 requests failed"
    assert "exception types and messages on inventory's failing spans" in report(inc)["recommendations"][0]


def test_timeout_recommendations_cover_health_caller_timeouts_retries_pools():
    inc = timeout_incident(affected=["inventory", "checkout"])
    text = " ".join(report(inc)["recommendations"])
    assert "health of inventory" in text
    assert "the callers (checkout)" in text
    assert "retries" in text
    assert "connection pools" in text


def test_cascading_recommendations_fix_the_named_root_first_then_protect_callers():
    recs = report(cascading_incident())["recommendations"]
    assert recs[0].startswith("Fix the root first: payment (shop).")
    assert "the callers (checkout)" in recs[0].lower()
    text = " ".join(recs)
    assert "health of payment" in text  # the root's own kind (timeout) contributes its first step
    assert "circuit breakers" in text
    assert "retries" in text.lower()
    assert "shed load" in text


def test_no_trace_id_still_gives_a_trace_to_look_at():
    recs = report(latency_incident(trace=None))["recommendations"]
    assert "None" not in " ".join(recs)
    assert any("a slow or failing trace" in r for r in recs)
