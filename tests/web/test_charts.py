"""GET /aiops/series, the endpoint page, the incident page's charts and the trace page, on SQLite
and PostgreSQL: the contract's fields, the 400s, the downsampling bound, the ETag, and hostile
names escaped everywhere."""

from __future__ import annotations

import time
from urllib.parse import quote, urlencode

import pytest
from markupsafe import escape

from aiops.store.models import AnomalyRecord, Baseline, DetectionState
from telemetry.db import begin_write, db
from tests.support.factories import add_incident, insert_spans, row_of, span
from tests.support.hostile_pages import HOSTILE_NAME, XSS_SERVICE, assert_inert

SERIES = "/aiops/series"


def series_url(service: str = "shop", endpoint: str = "payment", **args) -> str:
    return f"{SERIES}?{urlencode({'service': service, 'endpoint': endpoint, **args}, quote_via=quote)}"


def page_url(service: str, endpoint: str, **args) -> str:
    url = f"/services/{quote(service, safe='')}/endpoints/{quote(endpoint, safe='/')}"
    return f"{url}?{urlencode(args)}" if args else url


def seed(app, now: float, endpoint: str = "payment", service: str = "shop", n: int = 120,
         every: float = 10.0) -> list:
    spans = [span(endpoint, 20.0 + i % 7, service=service, start_time=now - 5 - i * every,
                  status_code=503 if i % 10 == 0 else 200) for i in range(n)]
    insert_spans(app, [row_of(s) for s in spans])
    return spans


def learn(app, service: str = "shop", endpoint: str = "payment", latency_ms: float = 20.0) -> None:
    with app.app_context():
        begin_write()
        db.session.add(Baseline(service=service, endpoint=endpoint, latency_ms=latency_ms, error_rate=0.01,
                                samples=1000, windows=50, updated_at=time.time()))
        db.session.commit()


def test_a_series_has_the_contract_fields(app, client):
    now = time.time()
    seed(app, now)
    learn(app)
    body = client.get(series_url(since="30m")).get_json()
    assert body["service"] == "shop" and body["endpoint"] == "payment" and body["step"] == 10
    assert body["baseline"]["latency_ms"] == 20.0 and body["baseline"]["slow_above_ms"] == 70.0  # +50 ms
    assert body["baseline"]["ready"] is True
    full = [p for p in body["points"] if p["requests"]]
    assert sum(p["requests"] for p in full) == 120
    for point in body["points"]:
        assert set(point) >= {"t", "p50_ms", "p95_ms", "baseline_ms", "error_rate", "requests"}
        assert point["t"].endswith("Z") and point["baseline_ms"] == 20.0
    assert all(20.0 <= p["p50_ms"] <= p["p95_ms"] <= 26.0 for p in full)
    assert sum(p["error_rate"] * p["requests"] for p in full) == pytest.approx(12)


def test_without_a_baseline_the_points_say_none(client):
    body = client.get(series_url(since="15m")).get_json()
    assert body["baseline"] is None and body["incidents"] == []
    assert body["points"] and all(p["baseline_ms"] is None and p["requests"] == 0 for p in body["points"])


@pytest.mark.parametrize(("since", "most"), [("15m", 240), ("6h", 240), ("7d", 240)])
def test_a_range_is_downsampled_without_a_step(client, since, most):
    body = client.get(series_url(since=since)).get_json()
    assert 60 <= len(body["points"]) <= most


def test_a_7_day_range_serves_at_most_2000_points_and_refuses_a_finer_step(client):
    assert len(client.get(series_url(since="7d", step="303")).get_json()["points"]) <= 2000
    r = client.get(series_url(since="7d", step="60"))
    assert r.status_code == 400 and "at least 303 s" in r.get_json()["message"]


@pytest.mark.parametrize(("args", "named"), [
    ({"since": "yesterday"}, "'since' must be a duration back from now (15m, 6h, 7d)"),
    ({"until": "2026-13-01T00:00:00Z"}, "'until' must be a duration back from now"),
    ({"since": "1h", "until": "2h"}, "'since' must not be after 'until'"),
    ({"step": "fast"}, "'step' must be whole seconds (300) or a duration (30s, 5m, 1h)"),
    ({"step": "0"}, "'step' must be between 1 s and 86400 s"),
])
def test_bad_times_are_a_400_that_says_what_was_expected(client, args, named):
    r = client.get(series_url(**args))
    assert r.status_code == 400
    assert r.get_json()["error"] == "Bad Request" and named in r.get_json()["message"]


def test_a_range_reaching_past_the_years_an_answer_can_write_is_held_within_them(client):
    body = client.get(series_url(since="1900-01-01T00:00:00Z", until="1970-01-02T00:00:00Z")).get_json()
    assert body["since"] == "1970-01-01T00:00:00Z" and body["points"]


def test_service_and_endpoint_are_required_and_bounded(client):
    r = client.get(f"{SERIES}?endpoint=payment")
    assert r.status_code == 400 and "'service' is required" in r.get_json()["message"]
    assert client.get(f"{SERIES}?service=shop").status_code == 400
    r = client.get(series_url(endpoint="x" * 513))
    assert r.status_code == 400 and "at most 512 characters" in r.get_json()["message"]
    assert client.get(series_url(service="a\x00b")).status_code == 400


def test_incidents_are_those_rooted_at_or_affecting_the_endpoint_in_the_range(app, client):
    now = time.time()
    add_incident(app, "INC-root", at=now - 60)
    add_incident(app, "INC-affected", at=now - 60, root_endpoint="checkout", affected=["checkout", "payment"])
    add_incident(app, "INC-elsewhere", at=now - 60, root_endpoint="inventory", affected=["inventory"])
    add_incident(app, "INC-old", "resolved", at=now - 5 * 3600)
    with app.app_context():
        begin_write()
        db.session.add(AnomalyRecord(incident_id="INC-affected", service="shop", endpoint="payment",
                                     type="latency", observed=900.0, baseline=20.0, request_count=10,
                                     message="slow", detected_at=now - 60, trace_ids=[]))
        db.session.commit()
    body = client.get(series_url(since="1h")).get_json()
    found = {i["id"]: i for i in body["incidents"]}
    assert set(found) == {"INC-root", "INC-affected"}
    assert found["INC-root"]["root"] is True and found["INC-affected"]["root"] is False
    assert set(found["INC-root"]) >= {"id", "title", "first_detected", "resolved_at"}
    assert {i["id"] for i in client.get(series_url(since="6h")).get_json()["incidents"]} >= {"INC-old"}


def test_a_poll_gets_304_until_a_cycle_finishes(app, client):
    seed(app, time.time())
    first = client.get(series_url(since="15m"))
    tag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    again = client.get(series_url(since="15m"), headers={"If-None-Match": tag})
    assert again.status_code == 304 and not again.data
    assert client.get(series_url(since="1h"), headers={"If-None-Match": tag}).status_code == 200
    with app.app_context():  # what a finished detection cycle does to the state row
        begin_write()
        state = db.session.get(DetectionState, 1) or DetectionState(id=1, cursor=0, cycles=0)
        state.cycles += 1
        state.last_cycle_at = time.time()
        db.session.add(state)
        db.session.commit()
    after = client.get(series_url(since="15m"), headers={"If-None-Match": tag})
    assert after.status_code == 200 and after.headers["ETag"] != tag


def test_a_hand_resolve_changes_the_etag(app, client):
    add_incident(app, "INC-1")
    tag = client.get(series_url()).headers["ETag"]
    assert client.post("/aiops/incidents/INC-1/resolve").status_code == 200
    assert client.get(series_url(), headers={"If-None-Match": tag}).status_code == 200


# -- pages ---------------------------------------------------------------------------------


def test_the_endpoint_page_shows_the_series_incidents_and_traces(app, client):
    now = time.time()
    spans = seed(app, now)
    learn(app)
    add_incident(app, "INC-1", at=now - 60)
    r = client.get(page_url("shop", "payment", since="1h"))
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'data-series="/aiops/series?service=shop&amp;endpoint=payment&amp;since=1h"' in html
    assert "uPlot.iife.min.js" in html and "/static/charts.js" in html and "<script>" not in html
    assert 'href="/incidents/INC-1"' in html
    slowest = max(s.duration_ms for s in spans)
    assert any(f'href="/traces/{s.trace_id}"' in html for s in spans if s.duration_ms == slowest)
    failed = [s for s in spans if s.error]
    assert f'href="/traces/{max(failed, key=lambda s: s.start_time).trace_id}"' in html
    assert html.count("<tr><td class=\"nowrap\">") >= 10  # the points, readable without script
    assert '<noscript><meta http-equiv="refresh"' in html


def test_the_endpoint_page_refuses_bad_times_as_an_html_page(client):
    r = client.get(page_url("shop", "payment", since="nope"))
    assert r.status_code == 400 and r.mimetype == "text/html"
    assert "a duration back from now" in r.get_data(as_text=True)


@pytest.mark.parametrize("endpoint", [HOSTILE_NAME, "/api//users/{id}?x=1#y", "GET /a b/%2F/ü", "/"])
def test_hostile_and_odd_names_route_and_render_as_text(app, client, endpoint):
    now = time.time()
    seed(app, now, endpoint=endpoint, service=XSS_SERVICE, n=5)
    r = client.get(page_url(XSS_SERVICE, endpoint))
    assert r.status_code == 200, endpoint
    html = r.get_data(as_text=True)
    assert_inert(html)
    assert str(escape(endpoint)) in html and str(escape(XSS_SERVICE)) in html
    body = client.get(series_url(XSS_SERVICE, endpoint, since="15m")).get_json()
    assert body["endpoint"] == endpoint and sum(p["requests"] for p in body["points"]) == 5


def test_a_service_with_a_slash_has_a_page(app, client):
    seed(app, time.time(), service="team/orders", endpoint="GET /orders", n=3)
    r = client.get(page_url("team/orders", "GET /orders").replace("%2F", "/"))
    assert r.status_code == 200 and "team/orders" in r.get_data(as_text=True)


def test_the_dashboard_links_each_endpoint_to_its_page(app, client):
    seed(app, time.time(), endpoint=HOSTILE_NAME, n=3)
    html = client.get("/").get_data(as_text=True)
    assert 'href="/services/shop/endpoints/%3Cimg%20src=x%20onerror=%22document.title=' in html
    assert_inert(html)


def test_the_incident_page_charts_the_root_and_each_affected_endpoint(app, client):
    now = time.time()
    seed(app, now)
    add_incident(app, "INC-1", at=now - 60, affected=["payment", "checkout", HOSTILE_NAME])
    html = client.get("/incidents/INC-1").get_data(as_text=True)
    assert 'id="root-chart"' in html and 'data-detected="' in html and 'data-resolved=""' in html
    assert "/aiops/series?service=shop&amp;endpoint=payment&amp;since=" in html
    assert "/aiops/series?service=shop&amp;endpoint=checkout" in html
    assert html.count('class="mini charts"') == 2
    assert 'href="/services/shop/endpoints/payment"' in html
    assert_inert(html)


def test_a_resolved_incident_charts_up_to_after_its_resolution(app, client):
    now = time.time()
    add_incident(app, "INC-2", "resolved", at=now - 7200)
    html = client.get("/incidents/INC-2").get_data(as_text=True)
    assert "&amp;until=" in html and 'data-resolved="20' in html


def test_the_trace_page_shows_the_waterfall(app, client):
    spans = seed(app, time.time(), n=2)
    r = client.get(f"/traces/{spans[0].trace_id}")
    assert r.status_code == 200 and 'id="waterfall"' in r.get_data(as_text=True)
    assert client.get("/traces/not-hex").status_code == 400
    assert "is no longer stored" in client.get("/traces/" + "ab" * 16).get_data(as_text=True)


def test_incident_pages_whose_clock_runs_ahead_or_whose_root_is_a_service_render(app, client):
    add_incident(app, "INC-future", at=time.time() + 7200)  # replayed data on its own clock
    add_incident(app, "INC-whole", root_endpoint="")
    assert 'id="root-chart"' in client.get("/incidents/INC-future").get_data(as_text=True)
    html = client.get("/incidents/INC-whole").get_data(as_text=True)
    assert 'id="root-chart"' not in html and "no one endpoint to chart" in html


def test_an_active_incident_replayed_years_ago_charts_around_when_it_was_seen(app, client):
    """A replayed incident still open on the data's old clock: its charts end a pad after it was
    last seen (not years of empty buckets up to now, which no step could serve)."""
    last_seen = time.time() - 4 * 365 * 86400
    add_incident(app, "INC-old", at=last_seen)
    r = client.get("/incidents/INC-old")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'id="root-chart"' in html and "&amp;until=" in html
