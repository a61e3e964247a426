"""The HTML pages: ``/`` and ``/incidents/<id>`` (Flask test client, SQLite and PostgreSQL).

Every string that reaches a page came from telemetry and is hostile: the
seeded spans carry markup in their service and endpoint names and exception
texts, and it flows through the real pipeline (detection cycle, RCA,
incidents) into titles, anomaly messages, candidates and the waterfall.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
from markupsafe import escape

from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import Thresholds
from aiops.settings import Settings
from aiops.web import pages, waterfall
from tests.support.factories import add_incident, insert_spans, span
from tests.support.factories import client as client_span
from tests.support.hostile_pages import (
    XSS_CALLEE,
    XSS_CALLER,
    XSS_EXC_MESSAGE,
    XSS_SERVICE,
    Page,
    analyze,
    assert_inert,
    incident_json,
    seed_hostile_incident,
)

# -- hostile telemetry ---------------------------------------------------------------


def test_hostile_telemetry_is_escaped_on_the_incident_page(app, client):
    incident_id = seed_hostile_incident(app, client)
    data = incident_json(client, incident_id)
    # The payloads really are in the incident (else this test would prove nothing).
    assert (data["root_cause"]["service"], data["root_cause"]["endpoint"]) == (XSS_SERVICE, XSS_CALLEE)
    assert XSS_CALLEE in data["title"]
    assert any(XSS_EXC_MESSAGE in a["message"] for a in data["anomalies"])

    response = client.get(f"/incidents/{incident_id}")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    doc = assert_inert(html)
    # ...and they are shown as text, escaped.
    assert str(escape(data["title"])) in html
    assert str(escape(XSS_CALLEE)) in html
    assert str(escape(XSS_EXC_MESSAGE)) in html
    assert data["title"] in doc.plain
    titles = [attrs for tag, attrs in doc.tags if tag == "div" and "title" in attrs]
    assert any(XSS_EXC_MESSAGE in attrs["title"] for attrs in titles)  # attribute text, not markup
    # The waterfall shows the example trace's three spans.
    assert len(doc.elements_with_class("wf-span")) == 3
    # The propagation path starts at the root and names it, as text.
    path = data["propagation_path"]
    assert path and (path[0]["service"], path[0]["endpoint"]) == (XSS_SERVICE, XSS_CALLEE), path
    assert XSS_CALLEE in doc.text_of("propagation")


def test_hostile_telemetry_is_escaped_on_the_dashboard(app, client):
    incident_id = seed_hostile_incident(app, client)
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert_inert(html)
    assert str(escape(XSS_CALLER)) in html
    assert str(escape(XSS_SERVICE)) in html
    assert str(escape(incident_json(client, incident_id)["title"])) in html
    assert f'href="/incidents/{incident_id}"' in html

    # Resolved incidents keep escaping too.
    for _ in range(3):
        analyze(client)
    assert incident_json(client, incident_id)["status"] == "resolved"
    html = client.get("/").get_data(as_text=True)
    assert_inert(html)
    assert 'id="resolved-incidents"' in html and incident_id in html


def test_unknown_incident_is_an_html_404(client):
    response = client.get("/incidents/INC-0-404")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<h1>404 Not Found</h1>" in html
    assert "INC-0-404" in html
    # An id is user input too; it is echoed escaped.
    response = client.get("/incidents/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert response.status_code == 404 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    # The API keeps answering JSON for the same id.
    api = client.get("/aiops/incidents/INC-0-404")
    assert api.status_code == 404 and api.get_json()["error"] == "Not Found"


# -- the pages' content ----------------------------------------------------------------


def _known_trace(start: float) -> list:
    """checkout -> (call payment -> payment, call inventory -> inventory), stored out of order."""
    root = span("checkout", 100.0, start_time=start)
    call_pay = client_span(root, "payment", 60.0, start_time=start + 0.010)
    pay = span("payment", 55.0, parent=call_pay, start_time=start + 0.012)
    call_inv = client_span(root, "inventory", 20.0, start_time=start + 0.075)
    inv = span("inventory", 15.0, parent=call_inv, start_time=start + 0.078)
    return [inv, call_inv, pay, root, call_pay]


def _open_incident(app, spans: list, pods: dict | None = None) -> str:
    """Store ``spans`` and open an incident for them with the real incident service."""
    from aiops.detection.rules import Anomaly
    from aiops.incidents.lifecycle import apply_groups
    from aiops.incidents.rules import Policy
    from aiops.rca.analysis import Group
    from telemetry.db import begin_write, db

    insert_spans(app, spans)
    anomaly = Anomaly("shop", "payment", "latency", 55.0, 12.0, 10,
                      "Latency spike: 55ms (baseline: 12ms)", [spans[0].trace_id])
    group = Group(root=("shop", "payment"), anomalies=[anomaly],
                  candidates=[(("shop", "payment"), 0.8), (("shop", "checkout"), 0.2)],
                  example_trace=spans[0].trace_id, pods=pods or {})
    with app.app_context():
        begin_write()
        opened = apply_groups([group], time.time(), Policy.from_settings(Settings())).opened
        incident_id = opened[0].id
        db.session.commit()
    return incident_id


def test_incident_page_waterfall_orders_parents_before_children(app, client):
    spans = _known_trace(time.time() - 5)
    incident_id = _open_incident(app, spans)
    html = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    doc = assert_inert(html)
    rows = [attrs["class"].split() for _, attrs in doc.elements_with_class("wf-span")]
    labels = doc.texts_of_class("wf-label")[1:]  # [0] is the axis
    pads = [int(re.fullmatch(r"padding-left: (\d+)px", attrs["style"]).group(1))
            for _, attrs in doc.elements_with_class("wf-label")[1:]]
    bars = [[float(x) for x in re.fullmatch(r"margin-left: ([\d.]+)%; width: ([\d.]+)%", a["style"]).groups()]
            for _, a in doc.elements_with_class("wf-bar")]
    assert labels == [
        "shop checkout 200", "shop → payment 200", "shop payment 200",
        "shop → inventory 200", "shop inventory 200",
    ]
    assert pads[0] < pads[1] < pads[2] and pads[3] == pads[1] and pads[4] == pads[2]
    assert [left for left, _ in bars] == pytest.approx([0.0, 10.0, 12.0, 75.0, 78.0], abs=0.01)
    assert [width for _, width in bars] == pytest.approx([100.0, 60.0, 55.0, 20.0, 15.0], abs=0.01)
    # The root cause (payment, and the call to it) is marked; the others are not.
    assert ["wf-culprit" in r for r in rows] == [False, True, True, False, False]
    assert ["wf-client" in r for r in rows] == [False, True, False, True, False]
    # Root cause, evidence, candidates and timeline are on the page.
    text = doc.plain
    assert "Root cause shop / payment" in text
    assert "Latency spike: 55ms (baseline: 12ms)" in text
    assert "80% of the blame lands on payment" in text
    assert re.search(r"1 shop payment 80%.*2 shop checkout 20%", text)
    assert "detected by aiops" in text
    assert 'href="#waterfall"' in html and spans[0].trace_id in html


def test_incident_page_names_the_pod_the_evidence_points_at(app, client):
    hostile = "<script>alert(1)</script>-pod"
    incident_id = _open_incident(app, _known_trace(time.time() - 5), pods={"shop": hostile})
    html = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    doc = assert_inert(html)
    assert re.search(r"lands on payment\s*, in pod <script>alert\(1\)</script>-pod", doc.plain)
    assert re.search(r"1 shop pod <script>alert\(1\)</script>-pod payment 80%", doc.plain)
    assert "<script>alert(1)" not in html


def test_incident_page_without_a_stored_trace(app, client):
    incident_id = _open_incident(app, [span("payment", 5.0, start_time=time.time())])
    from aiops.store.models import Incident
    from telemetry.db import begin_write, db

    with app.app_context():
        begin_write()
        db.session.get(Incident, incident_id).trace_id = "f" * 32
        db.session.commit()
    html = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    assert "is no longer stored" in html and 'id="waterfall"' not in html


def _store(app, incident_id: str, **fields) -> None:
    """Set columns of a stored incident, as the lifecycle does when it reopens or links one."""
    from aiops.store.models import Incident
    from telemetry.db import begin_write, db

    with app.app_context():
        begin_write()
        incident = db.session.get(Incident, incident_id)
        for name, value in fields.items():
            setattr(incident, name, value)
        db.session.commit()


def test_incident_page_report_card_and_lifecycle_lines(app, client):
    """The card shows the report the API gives (written from hostile telemetry), and a reopened,
    linked incident says so; a hostile link target stays text."""
    iid = seed_hostile_incident(app, client)
    related = "INC-1-<img src=x onerror=\"document.title='pwned-related'\">"
    _store(app, iid, related_to=related, reopen_count=2)
    report = incident_json(client, iid)["report"]
    assert XSS_SERVICE in report["summary"] and report["recommendations"], report  # hostile words to show
    html = client.get(f"/incidents/{iid}").get_data(as_text=True)
    doc = assert_inert(html)
    card = doc.text_of(id="report")
    assert card.startswith("Report " + report["kind"]) and report["summary"] in card
    recommendations = re.search(r'<ol class="recommendations">(.*?)</ol>', html, re.S).group(1)
    assert Page(recommendations).text_in("li") == report["recommendations"]
    link = [a for t, a in doc.tags if t == "a" and a.get("id") == "related-to"]
    assert len(link) == 1 and unquote(link[0]["href"]) == "/incidents/" + related
    assert not set(link[0]["href"]) & set('<>" ')  # (a ' stays, escaped by Jinja in the attribute)
    assert doc.text_of(id="related-to") == related
    assert doc.text_of(id="reopen-count") == "reopened 2 times"

    _store(app, iid, related_to=None, reopen_count=1)
    html = client.get(f"/incidents/{iid}").get_data(as_text=True)
    assert 'id="related-to"' not in html
    assert Page(html).text_of(id="reopen-count") == "reopened 1 time"
    _store(app, iid, reopen_count=0)
    assert "reopened" not in assert_inert(client.get(f"/incidents/{iid}").get_data(as_text=True)).plain

    # An incident without anomalies still has a report: of kind "unknown", with what to check first.
    bare = add_incident(app, "INC-2-1")
    report = incident_json(client, bare)["report"]
    html = client.get(f"/incidents/{bare}").get_data(as_text=True)
    assert report["kind"] == "unknown"
    assert assert_inert(html).text_of(id="report").startswith("Report unknown")
    recommendations = re.search(r'<ol class="recommendations">(.*?)</ol>', html, re.S).group(1)
    assert Page(recommendations).text_in("li") == report["recommendations"]


def test_timeline_events_get_their_own_classes(app, client):
    names = ["detected", "confirmed", "notified", "escalated", "acknowledged", "remediation", "resolved",
             "reopened"]
    timeline = [{"at": "2026-01-20T10:30:15Z", "event": name, "by": "aiops", "detail": f"{name} detail"}
                for name in names]
    timeline.append({"at": "2026-01-20T10:31:15Z", "event": "notified", "by": XSS_SERVICE,
                     "detail": XSS_EXC_MESSAGE, "comment": XSS_CALLER})
    iid = add_incident(app, "INC-2-2", timeline=timeline)
    doc = assert_inert(client.get(f"/incidents/{iid}").get_data(as_text=True))
    classes = [a["class"] for _, a in doc.elements_with_class("event")]
    assert classes == [f"event event-{n}" for n in [*names, "notified"]]
    text = doc.text_of(id="timeline")
    assert "2026-01-20T10:30:15Z reopened by aiops: reopened detail" in text
    assert f"notified by {XSS_SERVICE}: {XSS_EXC_MESSAGE}" in text and XSS_CALLER in text
    css = (Path(__file__).resolve().parents[2] / "static" / "style.css").read_text()
    for name in names:
        assert f".event-{name} " in css, name


def test_dashboard_lists_endpoints_and_refreshes(app, client):
    fresh = client.get("/").get_data(as_text=True)
    assert "No requests recorded" in fresh and "No active incidents." in fresh
    # Without script, a reload every 30 s; with it, live.js polls (the refresh is inside <noscript>).
    assert '<noscript><meta http-equiv="refresh" content="30"></noscript>' in fresh
    assert re.search(r'id="live-status" class="live-status" data-live-etag="[0-9a-f]{32}" '
                     r'data-live-poll="2"', fresh)

    now = time.time()
    spans = [s for i in range(3) for s in _known_trace(now - 10 - i)]
    incident_id = _open_incident(app, spans)
    html = client.get("/").get_data(as_text=True)
    doc = assert_inert(html)
    linked = r'<td class="ep-name"><a href="/services/[^"]+">([^<]*)</a></td>'  # to the endpoint's page
    endpoints = [m.group(1) for m in re.finditer(linked, html)]
    assert endpoints == ["checkout", "inventory", "payment"]  # SERVER spans only
    assert "root cause · " + incident_id in doc.plain
    assert "affected · " not in doc.plain  # checkout is not in this incident's affected list
    assert re.search(r'id="active-incidents".*' + re.escape(incident_id), html, re.S)
    assert "(1) Dashboard" in html  # the tab title counts active incidents

    paused = client.get("/?refresh=0").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in paused and "live updates paused" in paused
    assert "data-live-etag" not in paused  # live.js polls nothing either
    for arg, seconds in (("99999", 3600), ("1", 5), ("x", 30)):
        page = client.get(f"/?refresh={arg}").get_data(as_text=True)
        assert f'<noscript><meta http-equiv="refresh" content="{seconds}"></noscript>' in page


# -- aiops.web.waterfall.layout (pure) -----------------------------------------------------


def test_layout_empty():
    assert waterfall.layout([]) == []
    assert waterfall.total_ms([]) == 0.0
    assert waterfall.ticks(0.0) == []


def test_layout_depth_first_with_offsets_in_percent():
    spans = _known_trace(1000.0)
    rows = waterfall.layout(spans, highlight=("shop", "payment"))
    assert [(r["span"].endpoint, r["depth"]) for r in rows] == [
        ("checkout", 0), ("payment", 1), ("payment", 2), ("inventory", 1), ("inventory", 2),
    ]
    assert [r["client"] for r in rows] == [False, True, False, True, False]
    assert [r["culprit"] for r in rows] == [False, True, True, False, False]
    assert [r["left"] for r in rows] == pytest.approx([0.0, 10.0, 12.0, 75.0, 78.0])
    assert [r["width"] for r in rows] == pytest.approx([100.0, 60.0, 55.0, 20.0, 15.0])
    assert [r["offset_ms"] for r in rows] == pytest.approx([0.0, 10.0, 12.0, 75.0, 78.0], abs=1e-3)
    assert waterfall.total_ms(rows) == pytest.approx(100.0, abs=1e-3)
    assert [t["left"] for t in waterfall.ticks(100.0)] == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert [t["ms"] for t in waterfall.ticks(100.0)] == [0.0, 25.0, 50.0, 75.0, 100.0]


def test_layout_siblings_by_start_time_and_orphans_as_roots():
    root = span("root", 100.0, start_time=10.0)
    late = span("late", 10.0, parent=root, start_time=10.05)
    early = span("early", 10.0, parent=root, start_time=10.01)
    orphan = span("orphan", 10.0, trace_id=root.trace_id, start_time=10.02)
    orphan.parent_span_id = "deadbeefdeadbeef"  # its parent never arrived
    rows = waterfall.layout([late, orphan, early, root])
    assert [(r["span"].endpoint, r["depth"]) for r in rows] == [
        ("root", 0), ("early", 1), ("late", 1), ("orphan", 0),
    ]


def test_layout_survives_malformed_spans():
    a = span("a", 10.0, start_time=5.0)
    b = span("b", 10.0, start_time=5.001)
    a.parent_span_id, b.parent_span_id = b.span_id, a.span_id  # a parent cycle
    selfish = span("self", 10.0, start_time=5.002)
    selfish.parent_span_id = selfish.span_id
    twin1 = span("twin1", 1.0, start_time=5.003)
    twin2 = span("twin2", 1.0, start_time=5.004)
    twin2.span_id = twin1.span_id  # duplicate span id
    child = span("child", 1.0, parent=twin1, start_time=5.005)
    nan = span("nan", float("nan"), start_time=5.006)
    inf = span("inf", float("inf"), start_time=5.007)
    negative = span("negative", -50.0, start_time=5.008)
    none = span("none", None, start_time=None)
    spans = [a, b, selfish, twin1, twin2, child, nan, inf, negative, none]
    rows = waterfall.layout(spans)
    assert sorted(id(r["span"]) for r in rows) == sorted(id(s) for s in spans)  # each exactly once
    for r in rows:
        for key in ("left", "width", "offset_ms", "duration_ms"):
            assert math.isfinite(r[key]), (r["span"].endpoint, key, r[key])
        assert 0.0 <= r["left"] <= 100.0
        assert waterfall.MIN_WIDTH <= r["width"] <= 100.0


def test_layout_zero_length_trace_and_row_cap():
    root = span("root", 0.0, start_time=1.0)
    kids = [span(f"k{i}", 0.0, parent=root, start_time=1.0) for i in range(20)]
    rows = waterfall.layout([root, *kids])
    assert len(rows) == 21 and all(r["width"] == waterfall.MIN_WIDTH for r in rows)
    capped = waterfall.layout([root, *kids], max_rows=5)
    assert [r["span"].endpoint for r in capped] == ["root", "k0", "k1", "k2", "k3"]  # by (start, span id)


def test_layout_deep_chain_is_not_recursive():
    spans = [span("s0", 1.0, start_time=0.0)]
    for i in range(1, 3000):
        spans.append(span(f"s{i}", 1.0, parent=spans[-1], start_time=i / 1000.0))
    rows = waterfall.layout(spans, max_rows=3000)
    assert len(rows) == 3000 and rows[-1]["depth"] == 2999


# -- page helpers (pure) ---------------------------------------------------------------


def test_endpoint_health_states():
    th = Thresholds.from_settings(Settings())
    inc = SimpleNamespace(root_service="shop", root_endpoint="payment", affected=["payment", "checkout"])
    endpoints = {
        "payment": {"service": "shop", "endpoint": "payment", "avg_latency_ms": 900.0,
                    "baseline_latency_ms": 20.0, "error_rate": 0.0},
        "checkout": {"service": "shop", "endpoint": "checkout", "avg_latency_ms": 950.0,
                     "baseline_latency_ms": 60.0, "error_rate": 0.0},
        "inventory": {"service": "shop", "endpoint": "inventory", "avg_latency_ms": 10.0,
                      "baseline_latency_ms": 10.0, "error_rate": 0.5},
        "health": {"service": "shop", "endpoint": "health", "avg_latency_ms": 1.0,
                   "baseline_latency_ms": None, "error_rate": 0.0},
        "api x": {"service": "api", "endpoint": "x", "avg_latency_ms": 12.0,
                  "baseline_latency_ms": 10.0, "error_rate": 0.0},
    }
    ready = th.min_baseline_samples
    learned = {(m["service"], m["endpoint"]): BaselineValue(m["baseline_latency_ms"], samples=ready)
               for m in endpoints.values() if m["baseline_latency_ms"] is not None}
    health = pages.endpoint_health(endpoints, learned, th, [inc])
    assert {k: v["state"] for k, v in health.items()} == {
        "payment": "incident", "checkout": "slow", "inventory": "errors", "health": "learning", "api x": "ok",
    }
    assert health["payment"]["roots"] == [inc] and health["checkout"]["touched"] == [inc]
    assert health["payment"]["ratio"] == pytest.approx(45.0) and health["health"]["ratio"] is None


def test_endpoint_health_asks_detection_whether_slow():
    """The dashboard's "slow" is detection's verdict: the same factor and floor, and no verdict (still
    learning) while the baseline has fewer samples than AIOPS_MIN_BASELINE_SAMPLES."""
    th = Thresholds.from_settings(Settings())
    endpoint = {"service": "shop", "endpoint": "payment", "baseline_latency_ms": 20.0, "error_rate": 0.0}
    key = ("shop", "payment")
    ready = BaselineValue(20.0, samples=th.min_baseline_samples)
    young = BaselineValue(20.0, samples=th.min_baseline_samples - 1)
    for avg in (10.0, 20.0, 20.0 * th.latency_factor + 1, 20.0 + th.latency_min_delta_ms, 900.0):
        state = pages.endpoint_health({"payment": {**endpoint, "avg_latency_ms": avg}}, {key: ready}, th,
                                      [])["payment"]["state"]
        assert state == ("slow" if th.is_slow(avg, ready) else "ok"), avg
        young_state = pages.endpoint_health({"payment": {**endpoint, "avg_latency_ms": avg}}, {key: young},
                                            th, [])["payment"]["state"]
        assert young_state == "learning", avg
    assert th.is_slow(900.0, ready) and not th.is_slow(900.0, young)


def test_anomaly_summary_folds_cycles_root_first():
    def a(endpoint, kind, observed, at):
        return {"service": "shop", "endpoint": endpoint, "type": kind, "observed": observed,
                "baseline": 10.0, "message": f"{endpoint} {observed}", "detected_at": at}

    rows = pages.anomaly_summary(
        [a("checkout", "latency", 300.0, "t1"), a("payment", "latency", 250.0, "t1"),
         a("payment", "latency", 400.0, "t2"), a("payment", "error", 0.5, "t2")],
        ("shop", "payment"),
    )
    assert [(r["endpoint"], r["type"], r["cycles"], r["peak"], r["root"]) for r in rows] == [
        ("payment", "error", 1, 0.5, True),
        ("payment", "latency", 2, 400.0, True),
        ("checkout", "latency", 1, 300.0, False),
    ]
    assert rows[1]["first"] == "t1" and rows[1]["last"] == "t2" and rows[1]["message"] == "payment 400.0"


def test_formatting_helpers():
    assert [pages.ago(s) for s in (None, float("nan"), -3, 5, 89, 600, 3600, 3 * 3600 + 300, 2 * 86400)] == [
        "-", "-", "0 s", "5 s", "89 s", "10 min", "1 h", "3 h 5 min", "2 d",
    ]
    assert [pages.fmt_ms(v) for v in (None, 0, 8.94, 624.2, 3046.3)] == [
        "-", "0 ms", "8.9 ms", "624 ms", "3,046 ms",
    ]
    assert pages.fmt_observed("error", 0.583) == "58.3%"
    assert pages.fmt_observed("timeout", 4.0) == "4 calls"
    assert pages.fmt_observed("latency", None) == "-"


def test_dashboard_marks_incidents_not_yet_confirmed(app, client):
    from aiops.store.models import Incident
    from telemetry.db import begin_write, db

    incident_id = _open_incident(app, _known_trace(time.time() - 5))
    doc = assert_inert(client.get("/").get_data(as_text=True))
    assert doc.texts_of_class("unconfirmed") == ["unconfirmed"]
    with app.app_context():
        begin_write()
        db.session.get(Incident, incident_id).confirmed_at = time.time()  # seen again: confirmed
        db.session.commit()
    doc = assert_inert(client.get("/").get_data(as_text=True))
    assert doc.texts_of_class("unconfirmed") == []
