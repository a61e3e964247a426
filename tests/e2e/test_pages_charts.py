"""The charts in a real browser: headless Chromium against gunicorn, driven over the DevTools pipe.

The endpoint page of a hostile endpoint draws its charts (uPlot's canvases have pixels, its data
the series' points, its axes tick labels), shows the hostile names as text (nothing ran, nothing
became an element), and updates without a reload when a detection cycle finishes (its conditional
poll gets a 200 after the 304s). The incident page draws the root endpoint's chart, and shows a
resolve made elsewhere without a reload. Skipped without
Chromium unless ``AIOPS_TEST_REQUIRE_CHROMIUM=1`` (CI), where that fails.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest

from tests.conftest import dispose_app, make_app
from tests.e2e import helpers as h
from tests.e2e.test_pages import Browser, assert_no_payload_elements, chromium_binary, title_of
from tests.support.factories import add_incident, insert_spans, row_of, span
from tests.support.hostile_pages import HOSTILE_NAME, XSS_SERVICE

pytestmark = pytest.mark.e2e

# What a chart group shows once drawn: its points, and per chart the canvas pixels painted,
# uPlot's data length and the x axis' tick labels.
STATE = """(() => {
  const g = document.querySelector(%s);
  if (!g || !g.dataset.points) return null;
  const charts = {};
  for (const [kind, u] of Object.entries(g.aiopsPlots || {})) {
    const c = u.ctx.canvas, px = u.ctx.getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
    charts[kind] = {painted, data: u.data[0].length, ticks: (u.axes[0]._values || []).length,
                    legend: [...u.root.querySelectorAll('.u-legend .u-label')].map(e => e.textContent)};
  }
  return {points: +g.dataset.points, error: g.dataset.error || '', charts,
          requests: [...document.querySelectorAll('table.points tbody tr td:nth-child(2)')]
                      .reduce((n, td) => n + (+td.textContent || 0), 0)};
})()"""


def seed(app, now: float, count: int, endpoint: str = HOSTILE_NAME, service: str = XSS_SERVICE,
         start: float = 30.0) -> None:
    insert_spans(app, [row_of(span(endpoint, 20.0 + (i % 9) * 3, service=service,
                                   start_time=now - start - i * 7, status_code=500 if i % 8 == 0 else 200))
                       for i in range(count)])


@pytest.fixture(scope="module")
def chart_server(tmp_path_factory):
    chromium_binary()  # skip before the expensive part
    tmp = tmp_path_factory.mktemp("charts")
    url = h.sqlite_url(tmp)
    app = make_app(url)
    now = time.time()
    try:
        seed(app, now, 200)
        add_incident(app, "INC-charts", at=now - 120, root_service=XSS_SERVICE, root_endpoint=HOSTILE_NAME,
                     title=f"{HOSTILE_NAME} is slow", affected=[HOSTILE_NAME])
    finally:
        dispose_app(app)
    with h.running(tmp, h.shop_env(url, AIOPS_DETECTION_INTERVAL=5)) as server:
        yield server, url


def wait_state(tab, selector: str, done, what: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = tab.evaluate(STATE % json.dumps(selector))
        if state and done(state):
            return state
        assert time.monotonic() < deadline, f"{what}: {state}"
        time.sleep(0.2)


def test_the_endpoint_page_draws_its_charts_and_updates_after_a_cycle(chart_server, tmp_path):
    server, url = chart_server
    page = f"{server.url}/services/{quote(XSS_SERVICE, safe='')}/endpoints/{quote(HOSTILE_NAME)}?since=1h"
    with Browser() as browser:
        tab = browser.new_tab()
        tab.navigate(page)
        state = wait_state(tab, "#charts", lambda s: set(s["charts"]) == {"latency", "errors", "requests"},
                           "the charts never drew")
        assert state["error"] == "" and state["points"] >= 60
        for kind, chart in state["charts"].items():
            assert chart["data"] == state["points"], kind
            assert chart["painted"] > 2000, (kind, chart)  # lines, band, axes: not a blank canvas
            assert chart["ticks"] >= 2, (kind, chart)  # time labels on the x axis
        assert state["charts"]["latency"]["legend"][1:] == ["p50", "p95"]
        assert state["requests"] == 200

        doc = tab.document()
        assert_no_payload_elements(doc)
        assert not title_of(doc).startswith("pwned")
        assert doc.text_of(id="endpoint-name") == HOSTILE_NAME
        assert doc.text_of(id="service-name") == XSS_SERVICE
        incidents = doc.text_of(id="endpoint-incidents")
        assert "INC-charts" in incidents and HOSTILE_NAME in incidents  # the title, as text

        # New spans, then a cycle: the page's next poll gets a 200 and redraws, without a reload.
        app = make_app(url)
        try:
            seed(app, time.time(), 50, start=5.0)
        finally:
            dispose_app(app)
        h.analyze(server)
        state = wait_state(tab, "#charts", lambda s: s["requests"] == 250, "no update after the cycle")
        assert state["charts"]["requests"]["data"] == state["points"]
        assert tab.evaluate("performance.getEntriesByType('navigation').length") == 1


def test_the_incident_page_charts_the_root_around_the_incident(chart_server):
    server, _ = chart_server
    with Browser() as browser:
        tab = browser.new_tab()
        tab.navigate(f"{server.url}/incidents/INC-charts")
        state = wait_state(tab, "#root-chart", lambda s: "latency" in s["charts"], "no root chart")
        assert state["charts"]["latency"]["painted"] > 2000 and state["charts"]["latency"]["ticks"] >= 2
        assert tab.evaluate("document.querySelector('#root-chart').dataset.detected").endswith("Z")
        doc = tab.document()
        assert_no_payload_elements(doc)
        assert not title_of(doc).startswith("pwned")

        # Resolved elsewhere: the next poll sees it, and the page's status and timeline follow.
        assert server.post("/aiops/incidents/INC-charts/resolve", json={"by": "bob"}).status_code == 200
        status = "document.querySelector('#incident-meta .status').textContent"
        h.wait_for(lambda: tab.evaluate(status) == "resolved", "the page never showed the resolve", 30)
        assert "resolved by bob" in " ".join(tab.evaluate("document.querySelector('#timeline').textContent")
                                            .split())
        assert tab.evaluate("performance.getEntriesByType('navigation').length") == 1
        assert_no_payload_elements(tab.document())


def test_what_changed_shows_hostile_attribute_values_as_text(chart_server):
    """The "What changed" table of an endpoint whose slow spans ran on a pod with a hostile name:
    the pod is the top factor, shown as text; nothing ran, nothing became an element."""
    server, url = chart_server
    now = time.time()
    rows = []
    for i in range(60):
        slow = i % 3 == 0
        s = span("GET /pay", 400.0 + i if slow else 20.0 + i % 5, service="orders", start_time=now - 60 - i)
        s.attributes = json.dumps({"k8s.pod.name": HOSTILE_NAME if slow else "orders-b", "tier": XSS_SERVICE})
        rows.append(row_of(s))
    app = make_app(url)
    try:
        insert_spans(app, rows)
    finally:
        dispose_app(app)
    with Browser() as browser:
        tab = browser.new_tab()
        tab.navigate(f"{server.url}/services/orders/endpoints/{quote('GET /pay')}?since=1h")
        doc = tab.document()
        assert_no_payload_elements(doc)
        assert not title_of(doc).startswith("pwned")
        table = doc.text_of(id="changes")
        assert "k8s.pod.name" in table and HOSTILE_NAME in table
        assert HOSTILE_NAME in doc.text_of(id="changes-where")  # every bad span ran there
        assert "tier" not in table  # the same on every span: no factor
