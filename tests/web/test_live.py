"""Live pages (aiops.web.live): the dashboard, an incident's page, an endpoint's page and the map
answer ``live.js``' poll with a 304 until a cycle finishes or an incident changes, then the page
again; a reload without script always gets the page (no-store, a <noscript> refresh). And the map's
``?incident=`` path, over real stores."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import pytest

from tests.support.factories import add_incident, insert_spans, span
from tests.support.factories import client as client_span
from tests.support.hostile_pages import XSS_SERVICE, assert_inert

PAGES = ("/", "/incidents/INC-live", f"/services/shop/endpoints/{quote('GET /')}", "/map?since=1h")


def tag_of(html: str) -> str:
    return re.search(r'data-live-etag="([0-9a-f]{32})"', html)[1]


@pytest.mark.parametrize("path", PAGES)
def test_a_live_page_is_a_304_until_a_cycle_or_an_incident_changes(app, client, path):
    insert_spans(app, [span("GET /", 20, start_time=time.time() - 30)])
    add_incident(app, "INC-live")
    page = client.get(path)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    tag = f'"{tag_of(html)}"'
    assert page.headers["ETag"] == tag
    assert '<script src="/static/live.js" defer></script>' in html
    assert html.count('http-equiv="refresh"') == html.count('<noscript><meta http-equiv="refresh"') == 1
    assert_inert(html.replace('<script type="application/json" id="map-data">', "<x>"))

    poll = client.get(path, headers={"If-None-Match": tag})
    assert (poll.status_code, poll.data, poll.headers["ETag"]) == (304, b"", tag)
    assert client.get(path).status_code == 200  # a reload without the header: the page
    assert client.get(path + ("&" if "?" in path else "?") + "x=1",
                      headers={"If-None-Match": tag}).status_code == 200  # another address

    assert client.post("/aiops/analyze").status_code == 200
    after = client.get(path, headers={"If-None-Match": tag})
    assert after.status_code == 200 and after.headers["ETag"] != tag
    tag = after.headers["ETag"]
    assert client.post("/aiops/incidents/INC-live/acknowledge", json={"by": "ann"}).status_code == 200
    acked = client.get(path, headers={"If-None-Match": tag})
    assert acked.status_code == 200
    if path in ("/", "/incidents/INC-live"):  # the pages that show the incident show it acknowledged
        assert "status-acknowledged" in acked.get_data(as_text=True)


def test_an_unknown_incident_page_is_a_404_even_with_an_etag(client):
    assert client.get("/incidents/INC-none", headers={"If-None-Match": "*"}).status_code == 404


def test_the_dashboard_poll_brings_a_new_incident_as_a_live_part(app, client):
    html = client.get("/").get_data(as_text=True)
    assert re.findall(r'<(?:div|section|span) [^>]*id="([a-z-]+)" data-live>', html) == [
        "updated", "tiles", "endpoints-section", "active-section", "resolved-section"]
    add_incident(app, "INC-new", title=XSS_SERVICE)
    fresh = client.get("/", headers={"If-None-Match": f'"{tag_of(html)}"'})
    assert fresh.status_code == 200
    active = fresh.get_data(as_text=True).split('id="active-section"')[1].split("</section>")[0]
    assert "INC-new" in active and XSS_SERVICE not in active  # the title, escaped
    assert_inert(fresh.get_data(as_text=True))


def _chain(now: float) -> list:
    """frontend -> orders -> payments, and frontend -> ads, five times."""
    spans = []
    for i in range(5):
        front = span("GET /", 50, service="frontend", start_time=now - 60 + i)
        for caller, service, name in ((front, "orders", "POST /orders"), (front, "ads", "GET /ad")):
            out = client_span(caller, name, 22, start_time=caller.start_time)
            out.peer = service
            served = span(name, 20, service=service, parent=out, start_time=caller.start_time)
            spans += [out, served]
            if service == "orders":
                pay = client_span(served, "POST /pay", 12, start_time=caller.start_time)
                pay.peer = "payments"
                spans += [pay, span("POST /pay", 10, service="payments", parent=pay,
                                    start_time=pay.start_time)]
        spans.append(front)
    return spans


def test_the_map_of_an_incident_carries_its_path(app, client):
    now = time.time()
    insert_spans(app, _chain(now))
    hops = [{"service": "payments", "endpoint": "POST /pay", "signal": "self-time"},
            {"service": "orders", "endpoint": "POST /orders", "signal": "latency"},
            {"service": "frontend", "endpoint": "GET /", "signal": "latency"}]
    add_incident(app, "INC-path", root_service="payments", root_endpoint="POST /pay", propagation=hops,
                 at=now - 20)
    body = client.get("/aiops/map?incident=INC-path").get_json()
    assert body["path"] == {"incident": "INC-path", "root": "payments",
                            "nodes": ["payments", "orders", "frontend"],
                            "edges": [["frontend", "orders"], ["orders", "payments"]]}
    assert {n["id"] for n in body["nodes"]} == {"frontend", "orders", "payments", "ads"}
    assert "path" not in client.get("/aiops/map").get_json()
    # The incident's range by default (as its charts'); since/until override it.
    assert body["since"] < body["until"]
    assert client.get("/aiops/map?incident=INC-path&since=1s").get_json()["path"]["edges"] == []
    # Unknown incident: 404, even with an ETag; the ETag follows the incident asked for.
    missing = client.get("/aiops/map?incident=INC-none", headers={"If-None-Match": "*"})
    assert missing.status_code == 404 and missing.get_json()["error"] == "Not Found"
    tag = client.get("/aiops/map?incident=INC-path").headers["ETag"]
    assert client.get("/aiops/map?incident=INC-path", headers={"If-None-Match": tag}).status_code == 304
    assert client.get("/aiops/map", headers={"If-None-Match": tag}).status_code == 200


def test_the_incident_page_has_a_map_of_its_path(app, client):
    add_incident(app, "INC-page", root_service=XSS_SERVICE)
    html = client.get("/incidents/INC-page").get_data(as_text=True)
    src = re.search(r'<div id="map" class="map-canvas map-small"[^>]*data-src="([^"]+)"', html)[1]
    assert src.startswith("/aiops/map?incident=INC-page&amp;since=")
    assert 'id="map-data"' not in html  # fetched by map.js: the page's render reads no span
    assert_inert(html)
