"""``GET /aiops/traces``, the ``/traces`` search page and ``/traces/<id>`` on a real store (SQLite and
PostgreSQL): filters on one span, newest first, keyset pages, and 400s that say what was expected."""

from __future__ import annotations

import time

import pytest

from tests.support.factories import client as client_span
from tests.support.factories import insert_logs, insert_spans, log_row, span

NOW = time.time()


def _trace(start: float, pay_ms: float = 20.0, pay_status: int = 200, service: str = "shop") -> list:
    """checkout -> call payment -> payment (the payment's duration and status chosen)."""
    root = span("checkout", pay_ms + 30.0, start_time=start, service=service)
    call = client_span(root, "payment", pay_ms + 5.0, start_time=start + 0.01)
    pay = span("payment", pay_ms, parent=call, start_time=start + 0.012, status_code=pay_status,
               service=service)
    return [pay, call, root]


@pytest.fixture
def stored(app):
    """Five traces a minute apart, the newest first: a slow one, a failing one, three normal."""
    traces = [_trace(NOW - 60, pay_ms=900.0), _trace(NOW - 120, pay_status=503), _trace(NOW - 180),
              _trace(NOW - 240), _trace(NOW - 3 * 3600)]  # the last is outside the default hour
    for spans in traces:
        insert_spans(app, spans)
    return [spans[2].trace_id for spans in traces]


def test_lists_the_last_hour_newest_first_with_summaries(client, stored):
    answer = client.get("/aiops/traces")
    assert answer.status_code == 200
    body = answer.get_json()
    assert [t["trace_id"] for t in body["traces"]] == stored[:4]
    assert body["next"] is None
    slow = body["traces"][0]
    assert slow["root_service"] == "shop" and slow["root_endpoint"] == "checkout"
    assert slow["spans"] == 3 and slow["error"] is False
    assert slow["duration_ms"] == pytest.approx(930.0, abs=0.01)
    assert slow["start"].endswith("Z")
    assert body["traces"][1]["error"] is True


@pytest.mark.parametrize("query,expected", [
    ("min_ms=500", [0]),
    ("max_ms=40&endpoint=payment", [1, 2, 3]),
    ("errors=1", [1]),
    ("service=shop&endpoint=payment&min_ms=800&max_ms=1000", [0]),
    ("endpoint=checkout&errors=1", []),  # the failing span is payment's, not checkout's
    ("since=4h", [0, 1, 2, 3, 4]),
    ("since=4h&until=2h", [4]),
    ("service=other", []),
])
def test_a_trace_matches_when_one_span_matches_every_filter(client, stored, query, expected):
    body = client.get(f"/aiops/traces?{query}").get_json()
    assert [t["trace_id"] for t in body["traces"]] == [stored[i] for i in expected]


def test_endpoint_checkout_min_ms_matches_the_root(client, stored):
    body = client.get("/aiops/traces?endpoint=checkout&min_ms=900").get_json()
    assert [t["trace_id"] for t in body["traces"]] == [stored[0]]


def test_pages_follow_one_another_without_gaps_or_repeats(client, stored):
    seen, url = [], "/aiops/traces?since=4h&limit=2"
    while url:
        body = client.get(url).get_json()
        assert len(body["traces"]) <= 2
        seen += [t["trace_id"] for t in body["traces"]]
        url = f"/aiops/traces?since=4h&limit=2&cursor={body['next']}" if body["next"] else None
    assert seen == stored


def test_a_trace_id_finds_the_trace_whatever_the_range(client, stored):
    body = client.get(f"/aiops/traces?trace_id={stored[4].upper()}").get_json()
    assert [t["trace_id"] for t in body["traces"]] == [stored[4]]


@pytest.mark.parametrize("query,says", [
    ("since=yesterday", "'since' must be a duration back from now (15m, 6h, 7d)"),
    ("until=2026-13-01T00:00:00Z", "'until' must be"),
    ("since=1h&until=2h", "'since' must not be after 'until'"),
    ("min_ms=-1", "'min_ms' must be a number of milliseconds"),
    ("max_ms=nan", "'max_ms' must be a number"),
    ("min_ms=10&max_ms=5", "'min_ms' must not be above 'max_ms'"),
    ("errors=maybe", "'errors' must be 1"),
    ("trace_id=xyz", "'trace_id' must be 32 hex digits"),
    ("limit=0", "'limit' must be between 1 and 500"),
    ("cursor=abc", "'cursor' is not a cursor this server gave out"),
    ("service=" + "s" * 256, "'service' must be at most 255 characters"),
])
def test_bad_input_is_a_400_that_says_what_was_expected(client, stored, query, says):
    answer = client.get(f"/aiops/traces?{query}")
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "Bad Request"
    assert says in answer.get_json()["message"]


def test_search_page_lists_and_links_each_trace(client, stored):
    page = client.get("/traces?errors=1").get_data(as_text=True)
    assert f'href="/traces/{stored[1]}"' in page
    assert stored[0] not in page
    assert client.get("/traces?since=nonsense").status_code == 400
    assert "text/html" in client.get("/traces?since=nonsense").content_type


def test_search_page_with_a_trace_id_opens_that_trace(client, stored):
    answer = client.get(f"/traces?trace_id={stored[2]}")
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/traces/{stored[2]}")


def test_trace_page_draws_the_waterfall_and_the_log_lines(app, client, stored):
    insert_logs(app, [log_row(NOW - 60, "card declined <b>x</b>", severity=17, trace_id=stored[0])])
    page = client.get(f"/traces/{stored[0]}").get_data(as_text=True)
    assert page.count('class="wf-row wf-span') == 3
    assert "card declined &lt;b&gt;x&lt;/b&gt;" in page
    missing = client.get("/traces/" + "0" * 32)
    assert missing.status_code == 200 and "is no longer stored" in missing.get_data(as_text=True)
    assert client.get("/traces/not-a-trace").status_code == 400


def test_hostile_names_are_text(app, client):
    insert_spans(app, _trace(NOW - 30, service="<script>alert(1)</script>"))
    page = client.get("/traces").get_data(as_text=True)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
