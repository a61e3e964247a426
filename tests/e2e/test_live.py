"""Live pages in a real browser (headless Chromium over the DevTools pipe, against gunicorn): a
detection cycle that opens an incident shows on an open dashboard without a reload; the incident's
page draws its propagation path on its map; without JavaScript the dashboard shows the same data
and reloads itself. Skipped without Chromium unless ``AIOPS_TEST_REQUIRE_CHROMIUM=1`` (CI)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import dispose_app, make_app
from tests.e2e import helpers as h
from tests.e2e.test_map import wait_js
from tests.e2e.test_pages import Browser, assert_no_payload_elements, chromium_binary, title_of
from tests.support.factories import insert_spans
from tests.support.hostile_pages import XSS_CALLEE, XSS_CALLER, XSS_SERVICE, Page, hostile_trace

pytestmark = pytest.mark.e2e

ACTIVE_IDS = ("Array.from(document.querySelectorAll('#active-incidents td.id'))"
              ".map(td => td.textContent.trim())")
PATH = """(() => { const cy = window.aiopsMap && aiopsMap.cy; if (!cy || !aiopsMap.data.path) return null;
  return {root: cy.nodes('.path-root').map(n => n.id()),
          on: cy.nodes('.on-path').map(n => n.id()).sort(),
          off: cy.nodes('.off-path').map(n => n.id()).sort(),
          edges: cy.edges('.on-path').map(e => [e.source().id(), e.target().id()]).sort(),
          width: cy.edges('.on-path').map(e => e.style('width'))}; })()"""


def test_a_new_incident_shows_on_the_open_dashboard_and_its_path_on_its_map(tmp_path):
    chromium_binary()  # skip (or fail in CI) before the expensive part
    with h.running(tmp_path, h.shop_env(h.sqlite_url(tmp_path)), workers=2) as server, Browser() as browser:
        h.warm_up(server)
        tab = browser.new_tab()
        tab.navigate(server.url + "/")
        assert tab.evaluate(ACTIVE_IDS) == []
        assert tab.evaluate("document.getElementById('live-status').dataset.liveEtag").isalnum()
        tab.evaluate("window.notReloaded = true")
        # Its polls until a cycle are 304s: checked, nothing swapped in.
        checked = "document.getElementById('live-status').textContent.startsWith('live · checked')"
        wait_js(tab, checked, "a poll")
        assert tab.evaluate("document.body.dataset.liveSwaps") is None

        # A fault and one cycle (the API's, as the scheduler would run it): the poll brings the incident.
        # (3 s, as tests/e2e/test_faults.py: checkout is flagged too, so the path has a call on it)
        h.inject(server, "delay", endpoint="payment", duration=3000)
        assert h.checkouts(server.url, 8, threads=8) == {200: 8}
        summary = h.analyze(server)
        assert len(summary["incidents_opened"]) == 1, summary
        incident = h.only_incident(server)
        h.wait_for(lambda: tab.evaluate(ACTIVE_IDS) == [incident["id"]], "the incident row on the open page")
        assert tab.evaluate("window.notReloaded === true")
        assert tab.evaluate("performance.getEntriesByType('navigation').length") == 1
        assert tab.evaluate("document.title") == "(1) Dashboard · AIOps"
        assert int(tab.evaluate("document.body.dataset.liveSwaps")) >= 1
        endpoints = tab.evaluate("document.getElementById('endpoints').textContent")
        assert f"root cause · {incident['id']}" in endpoints
        assert "live · checked" in tab.evaluate("document.getElementById('live-status').textContent")
        assert_no_payload_elements(tab.document())

        # Its page: the path on the small map, the root most marked, the rest faded. Which endpoints
        # the cycle found slow besides payment depends on the machine's load (checkout usually is):
        # the path is exactly the demo's calls between the root and what the incident names.
        tab.navigate(f"{server.url}/incidents/{incident['id']}")
        path = wait_js(tab, PATH, "the path on the incident's map", timeout=30)
        named = {"payment", *incident["affected_endpoints"]}
        named |= {hop["endpoint"] for hop in incident["propagation_path"]}
        demo_calls = [["checkout", "inventory"], ["checkout", "payment"], ["inventory", "gateway"],
                      ["payment", "gateway"]]
        assert path["root"] == ["payment"]
        assert path["edges"] == [c for c in demo_calls if set(c) <= named], (path, named)
        assert set(path["on"]) == named & {"checkout", "payment", "inventory", "gateway", "health"}
        assert set(path["off"]) == {"checkout", "payment", "inventory", "gateway", "health"} - named
        assert path["width"] == ["5px"] * len(path["edges"])
        assert tab.evaluate("aiopsMap.data.path.incident") == incident["id"]


def test_without_javascript_the_dashboard_has_the_data_and_reloads(tmp_path):
    chromium_binary()
    with h.running(tmp_path, h.shop_env(h.sqlite_url(tmp_path)), workers=1) as server, Browser() as browser:
        assert h.checkouts(server.url, 4, threads=2) == {200: 4}
        tab = browser.new_tab()
        tab.send("Emulation.setScriptExecutionDisabled", {"value": True})
        tab.navigate(server.url + "/")
        root = tab.send("DOM.getDocument")["root"]["nodeId"]
        doc = Page(tab.send("DOM.getOuterHTML", {"nodeId": root})["outerHTML"])
        # Scripting off: the <noscript> refresh is a real element (with script on it is inert text).
        refresh = [a for t, a in doc.tags if t == "meta" and a.get("http-equiv") == "refresh"]
        assert refresh == [{"http-equiv": "refresh", "content": "30"}], refresh
        names = doc.texts_of_class("ep-name")
        assert {"checkout", "payment", "inventory"} <= set(names), names
        assert title_of(doc) == "Dashboard · AIOps"


def test_hostile_telemetry_arrives_live_as_text(tmp_path):
    """An incident built from hostile names reaches the open dashboard by the live swap, and its
    page's map draws them as labels: nothing in them ever becomes markup or runs."""
    chromium_binary()
    url = h.sqlite_url(tmp_path)
    app = make_app(url)
    now = time.time()
    try:
        insert_spans(app, [r for i in range(25)
                           for r in hostile_trace(now - 120 + i, 100.0, 50.0, failing=False)])
        env = h.shop_env(url, AIOPS_IGNORE_SERVICES="aiops,shop")  # the server's own requests left out
        with h.running(tmp_path, env, workers=1) as server, Browser() as browser:
            assert h.analyze(server)["incidents_opened"] == []  # the baselines
            tab = browser.new_tab()
            tab.navigate(server.url + "/")
            tab.evaluate("window.notReloaded = true")
            insert_spans(app, [r for i in range(10)
                               for r in hostile_trace(time.time() - 30 + i, 1100.0, 1000.0, failing=True)])
            [incident_id] = h.analyze(server)["incidents_opened"]
            h.wait_for(lambda: tab.evaluate(ACTIVE_IDS) == [incident_id], "the hostile incident, live")
            assert tab.evaluate("window.notReloaded === true")
            doc = tab.document()
            assert_no_payload_elements(doc)
            for payload in (XSS_SERVICE, XSS_CALLEE):
                assert payload in doc.plain, payload

            tab.navigate(f"{server.url}/incidents/{incident_id}")
            wait_js(tab, PATH, "the hostile incident's map", timeout=30)
            labels = tab.evaluate("aiopsMap.cy.nodes().map(n => n.data('label').split('\\n')[0])")
            assert {XSS_CALLER, XSS_CALLEE} <= set(labels), labels
            assert tab.evaluate("aiopsMap.data.path.root") == XSS_CALLEE
            # The caller failed with its callee: the call between them is the path, drawn thick.
            assert tab.evaluate(PATH)["edges"] == [[XSS_CALLER, XSS_CALLEE]]
            assert tab.evaluate(PATH)["width"] == ["5px"]
            assert_no_payload_elements(tab.document())
    finally:
        dispose_app(app)
