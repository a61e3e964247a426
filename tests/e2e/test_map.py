"""The ``/map`` page in a real browser (headless Chromium over the DevTools protocol, against a real
gunicorn server): the drawing has the nodes and edges of a known traffic pattern, hostile names are
drawn and listed as text, and a detection cycle updates it without a reload. The demo's own traffic
draws its endpoints, their calls and the external gateway."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import dispose_app, make_app
from tests.e2e import helpers as h
from tests.e2e.test_pages import Browser, Tab, chromium_binary, screenshot, title_of
from tests.support.factories import client as client_span
from tests.support.factories import insert_spans, span
from tests.support.hostile_pages import FORBIDDEN_TAGS, XSS_SERVICE, Page
from tests.web.test_map import SCRIPTS

pytestmark = pytest.mark.e2e

NODES = "aiopsMap.cy.nodes().map(n => n.id()).sort()"
EDGES = "aiopsMap.cy.edges().map(e => [e.source().id(), e.target().id()]).sort()"


def assert_inert_map(doc: Page) -> None:
    """No payload became an element or ran (it would set the title): the page's own scripts (the
    vendored files, map.js) and its JSON data block are the only scripts."""
    for tag, attrs in doc.tags:
        if tag == "script":
            data_block = attrs == {"type": "application/json", "id": "map-data"}
            assert attrs.get("src") in SCRIPTS or data_block, attrs
            continue
        assert tag not in FORBIDDEN_TAGS, (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    assert title_of(doc) == "Service map · AIOps"


def wait_js(tab: Tab, expression: str, what: str, timeout: float = 20.0):
    """Evaluate ``expression`` until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = tab.evaluate(expression)
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: still {value!r} after {timeout:g} s"
        time.sleep(0.2)


def calls(now: float, caller: str, callee: str, count: int = 5, peer: str | None = None) -> list:
    """``caller`` calling ``callee`` ``count`` times (CLIENT + SERVER spans); ``peer`` alone: an
    uninstrumented peer (no SERVER span)."""
    spans = []
    for i in range(count):
        entry = span("GET /", 30, service=caller, start_time=now - 60 + i)
        out = client_span(entry, "call", 20, start_time=entry.start_time)
        out.peer = peer or callee
        spans += [entry, out]
        if peer is None:
            spans.append(span("GET /work", 15, service=callee, parent=out, start_time=entry.start_time))
    return spans


def test_the_map_draws_known_traffic_and_updates_after_a_cycle(tmp_path):
    chromium_binary()  # skip (or fail in CI) before the expensive part
    url = h.sqlite_url(tmp_path)
    app = make_app(url)
    now = time.time()
    try:
        insert_spans(app, calls(now, "frontend", "orders") + calls(now, "orders", XSS_SERVICE)
                     + calls(now, "orders", "", peer="postgres"))
        # The server's own /health checks are the "shop" service's requests: left out like "aiops".
        env = h.shop_env(url, AIOPS_IGNORE_SERVICES="aiops,shop")
        with h.running(tmp_path, env, workers=1) as server, Browser() as browser:
            tab = browser.new_tab()
            tab.navigate(f"{server.url}/map")
            assert wait_js(tab, "window.aiopsMap && aiopsMap.cy.nodes().length", "the drawing")
            assert tab.evaluate(NODES) == sorted(["frontend", "orders", "postgres", XSS_SERVICE])
            assert tab.evaluate(EDGES) == sorted([["frontend", "orders"], ["orders", XSS_SERVICE],
                                                  ["orders", "postgres"]])
            assert tab.evaluate("aiopsMap.cy.getElementById('postgres').hasClass('external')")
            # The hostile name is the node's label (canvas text) and a table cell's text, never markup.
            label = tab.evaluate(f"aiopsMap.cy.getElementById({json.dumps(XSS_SERVICE)}).data('label')")
            assert label.startswith(XSS_SERVICE + "\n")
            doc = tab.document()
            assert_inert_map(doc)
            assert XSS_SERVICE in doc.texts_of_class("node-name")
            # A click on a service node lists its endpoints, each a link to its page.
            tab.evaluate("aiopsMap.cy.getElementById('orders').emit('tap'), true")
            links = tab.evaluate("Array.from(document.querySelectorAll('#map-details a.ep-link'))"
                                 ".map(a => [a.textContent, a.getAttribute('href')])")
            assert tab.evaluate("document.getElementById('map-details').hidden") is False
            assert links == [["GET /", "/services/orders/endpoints/GET%20%2F"],
                             ["GET /work", "/services/orders/endpoints/GET%20%2Fwork"]], links
            # Laid out: every node has a distinct position inside the canvas.
            positions = tab.evaluate("aiopsMap.cy.nodes().map(n => [n.renderedPosition('x'), "
                                     "n.renderedPosition('y')].map(Math.round).join(','))")
            assert len(set(positions)) == 4
            screenshot(f"{server.url}/map", tmp_path / "map.png")

            # The browser's dark mode: the page and the drawing follow it.
            label_colour = "aiopsMap.cy.getElementById('orders').style('color')"
            light = tab.evaluate(label_colour)
            dark = {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
            tab.send("Emulation.setEmulatedMedia", dark)
            assert tab.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(18, 21, 27)"
            changed = f"{label_colour} !== {json.dumps(light)} && {label_colour}"
            assert wait_js(tab, changed, "dark labels") == "rgb(230,232,236)"

            # A new service calls in; the next cycle's ETag brings it to the open page, no reload.
            tab.evaluate("window.notReloaded = true")
            insert_spans(app, calls(time.time(), "orders", "audit"))
            h.analyze(server)
            wait_js(tab, "aiopsMap.cy.getElementById('audit').length", "the live update")
            assert tab.evaluate("window.notReloaded === true && aiopsMap.updates >= 1")
            assert "audit" in tab.evaluate(
                "Array.from(document.querySelectorAll('#map-nodes .node-name')).map(e => e.textContent)")
            assert_inert_map(tab.document())

            # A 40-service system (a call tree with a few cross calls) stays readable: after the next
            # cycle every node is drawn inside the canvas, at a zoom that keeps 12 px labels legible,
            # and no two nodes' labels overlap.
            names = [f"svc{i:02d}" for i in range(40)]
            pairs = [(names[i], names[c]) for i in range(40) for c in (2 * i + 1, 2 * i + 2) if c < 40]
            pairs += [(names[i], names[(i * 7 + 3) % 40]) for i in range(0, 40, 5)]
            insert_spans(app, [s for a, b in pairs for s in calls(time.time(), a, b, count=2)])
            h.analyze(server)
            wait_js(tab, "aiopsMap.cy.nodes().length >= 45", "the 40 services")
            zoom = tab.evaluate("aiopsMap.cy.zoom()")
            assert zoom >= 0.7, zoom  # 12 px labels drawn at 8.4 px or more
            overlaps = tab.evaluate("""(() => {
                const cy = aiopsMap.cy, w = cy.width(), h = cy.height(), out = [];
                const boxes = cy.nodes().map(n => [n.id(), n.renderedBoundingBox({includeLabels: true})]);
                for (const [id, b] of boxes) if (b.x1 < 0 || b.y1 < 0 || b.x2 > w || b.y2 > h) out.push(id);
                for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
                  const [p, q] = [boxes[i][1], boxes[j][1]];
                  const hit = p.x1 < q.x2 && q.x1 < p.x2 && p.y1 < q.y2 && q.y1 < p.y2;
                  if (hit) out.push(boxes[i][0] + ' / ' + boxes[j][0]);
                }
                return out; })()""")
            assert overlaps == [], overlaps
            screenshot(f"{server.url}/map", tmp_path / "map-40.png")
    finally:
        dispose_app(app)


def test_the_demo_draws_its_endpoints_and_their_gateway(tmp_path):
    chromium_binary()
    with h.running(tmp_path, h.shop_env(h.sqlite_url(tmp_path)), workers=2) as server, Browser() as browser:
        assert h.checkouts(server.url, 6, threads=3) == {200: 6}
        time.sleep(0.5)  # the web workers' span buffers flush every 0.1 s
        tab = browser.new_tab()
        tab.navigate(f"{server.url}/map")
        wait_js(tab, "window.aiopsMap && aiopsMap.cy.nodes().length", "the drawing")
        nodes = tab.evaluate(NODES)
        assert {"checkout", "payment", "inventory", "gateway"} <= set(nodes), nodes
        edges = tab.evaluate(EDGES)
        assert [["checkout", "inventory"], ["checkout", "payment"], ["inventory", "gateway"],
                ["payment", "gateway"]] == [e for e in edges if e[0] != "health"], edges
        assert tab.evaluate("aiopsMap.data.by") == "endpoint"
        # A click on an endpoint node goes to its page; one on an edge to its traces.
        went = ("(() => { let to = null; aiopsMap.go = u => { to = u; }; aiopsMap.cy.getElementById(%s)"
                ".emit('tap'); return to; })()")
        assert tab.evaluate(went % "'payment'") == "/services/shop/endpoints/payment"
        edge = json.dumps(json.dumps(["checkout", "payment"], separators=(",", ":")))
        assert tab.evaluate(went % edge) == "/traces?service=shop&endpoint=payment&since=15m"
        screenshot(f"{server.url}/map", tmp_path / "map-demo.png")
