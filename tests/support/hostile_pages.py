"""Hostile telemetry and the pages built from it: the payloads, an incident the real pipeline
opens from them, and a parser that checks none of them became markup.

Every payload would change ``document.title`` if it ever ran: the browser tests
(tests/e2e/test_pages.py) check that too.
"""

from __future__ import annotations

import re
import time
import uuid
from html.parser import HTMLParser

from telemetry.columns import KIND_CLIENT, KIND_SERVER
from tests.support.factories import insert_logs, insert_spans, log_row, span_row

# An acknowledger's name, typed into the incident page's form.
HOSTILE_NAME = "<img src=x onerror=\"document.title='pwned-name'\">"
# Telemetry: a service, its endpoints and an exception, as an OTLP client may name them.
XSS_SERVICE = "<svg onload=\"document.title='pwned-service'\">"
XSS_CALLER = "<script>document.title='pwned-caller'</script>"
XSS_CALLEE = "pay\"><img src=x onerror=\"document.title='pwned-callee'\">"
XSS_EXC_TYPE = "<b onmouseover=alert(1)>Boom</b>Error"
XSS_EXC_MESSAGE = "\"><img src=x onerror=alert(1)><script>document.title='pwned-exc'</script>"
# A log line's body, as an OTLP client or a logging call may write it.
XSS_LOG_BODY = "<script>document.title='pwned-log'</script><img src=x onerror=alert(2)> refund 42 failed"
PAYLOADS = (XSS_SERVICE, XSS_CALLER, XSS_CALLEE, XSS_EXC_TYPE, XSS_EXC_MESSAGE, XSS_LOG_BODY)
OUR_SCRIPTS = {"/static/live.js", "/static/charts.js", "/static/map.js",
               "/static/vendor/uplot/uPlot.iife.min.js",
               "/static/vendor/cytoscape/cytoscape.min.js",
               "/static/vendor/cytoscape-dagre/cytoscape-dagre.min.js"}
INLINE_SCRIPT = re.compile(r"<script\b[^>]*>\s*[^<\s]", re.IGNORECASE)  # a script element with a body
FORBIDDEN_TAGS = {"script", "img", "svg", "iframe", "b", "object", "embed"}
# What a style attribute on these pages may look like: numbers only.
STYLE_OK = re.compile(
    r"^(padding-left: \d+px|margin-left: \d+(\.\d+)?%; width: \d+(\.\d+)?%|"
    r"left: \d+(\.\d+)?%|width: \d+(\.\d+)?%)$"
)


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr"}


class Page(HTMLParser):
    """Every element the browser would build from the page, with its attributes and text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.raw = html
        self.tags: list[tuple[str, dict]] = []
        self.elements: list[dict] = []
        self.text: list[str] = []
        self._open: list[dict] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        self.tags.append((tag, attrs))
        element = {"tag": tag, "attrs": attrs, "text": []}
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i]["tag"] == tag:
                del self._open[i:]
                return

    def handle_data(self, data):
        self.text.append(data)
        for element in self._open:
            element["text"].append(data)

    @staticmethod
    def _text(element: dict) -> str:
        return " ".join("".join(element["text"]).split())

    @property
    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())

    def text_in(self, tag: str) -> list[str]:
        return [self._text(e) for e in self.elements if e["tag"] == tag]

    def text_of(self, id: str) -> str:
        found = [e for e in self.elements if e["attrs"].get("id") == id]
        assert len(found) == 1, f"{len(found)} elements with id {id!r}"
        return self._text(found[0])

    def elements_with_class(self, name: str) -> list[tuple[str, dict]]:
        return [(e["tag"], e["attrs"]) for e in self.elements if name in e["attrs"].get("class", "").split()]

    def texts_of_class(self, name: str) -> list[str]:
        return [self._text(e) for e in self.elements if name in e["attrs"].get("class", "").split()]


def assert_inert(html: str) -> Page:
    """No payload survives as markup; the page has no script, no handler, numeric styles."""
    for payload in PAYLOADS:
        assert payload not in html
    doc = Page(html)
    assert not INLINE_SCRIPT.search(html)
    for tag, attrs in doc.tags:
        if tag == "script" and attrs.get("src") in OUR_SCRIPTS:
            continue  # the charts' own files (the CSP allows no other)
        assert tag not in FORBIDDEN_TAGS, (tag, attrs)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, attrs)
            if name == "style":
                assert STYLE_OK.match(value), value
            if name in ("href", "src"):
                assert not (value or "").lower().startswith(("javascript:", "data:text")), value
    return doc


# -- seeding through the real pipeline ------------------------------------------------


def hostile_trace(start: float, caller_ms: float, callee_ms: float, failing: bool) -> list[tuple]:
    """caller (SERVER) -> call callee (CLIENT) -> callee (SERVER), all in the hostile service."""
    trace_id = uuid.uuid4().hex
    ids = [uuid.uuid4().hex[:16] for _ in range(3)]
    common = dict(trace_id=trace_id, service=XSS_SERVICE, method="POST")
    return [
        span_row(**common, span_id=ids[0], parent_span_id=None, endpoint=XSS_CALLER, kind=KIND_SERVER,
                 status_code=502 if failing else 200, error=failing, start_time=start,
                 duration_ms=caller_ms, exception_type="BadGateway" if failing else None,
                 exception_message=f"{XSS_CALLEE} answered 500" if failing else None),
        span_row(**common, span_id=ids[1], parent_span_id=ids[0], endpoint=XSS_CALLEE, peer=XSS_SERVICE,
                 kind=KIND_CLIENT, status_code=500 if failing else 200, error=failing,
                 start_time=start + 0.002, duration_ms=callee_ms + 2),
        span_row(**common, span_id=ids[2], parent_span_id=ids[1], endpoint=XSS_CALLEE, kind=KIND_SERVER,
                 status_code=500 if failing else 200, error=failing, start_time=start + 0.003,
                 duration_ms=callee_ms, exception_type=XSS_EXC_TYPE if failing else None,
                 exception_message=XSS_EXC_MESSAGE if failing else None),
    ]


def analyze(client) -> dict:
    response = client.post("/aiops/analyze")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def seed_hostile_incident(app, client) -> str:
    """Normal traffic and a cycle (baselines), then a failing, slow callee and a cycle.

    Returns the id of the incident the real pipeline opened.
    """
    now = time.time()
    normal = [r for i in range(25) for r in hostile_trace(now - 120 + i, 100.0, 50.0, failing=False)]
    insert_spans(app, normal)
    first = analyze(client)
    assert first["incidents_opened"] == [], first
    failing = [r for i in range(10) for r in hostile_trace(now - 30 + i, 1100.0, 1000.0, failing=True)]
    insert_spans(app, failing)
    second = analyze(client)
    assert len(second["incidents_opened"]) == 1, second
    return second["incidents_opened"][0]


def incident_json(client, incident_id: str) -> dict:
    response = client.get(f"/aiops/incidents/{incident_id}")
    assert response.status_code == 200
    return response.get_json()


def seed_trace_logs(app, client, incident_id: str) -> dict:
    """Log lines of the incident's example trace, stored as ingest stores them, then mined by a
    cycle: the callee span an ERROR line with a hostile body and a WARN, the caller an INFO line,
    and a WARN of no span. Returns ``{"trace_id", "callee_span", "caller_span"}``."""
    from telemetry import store
    from telemetry.db import db

    trace_id = incident_json(client, incident_id)["trace_correlation"]["trace_id"]
    with app.app_context():
        spans = store.trace_spans([trace_id])[trace_id]
        db.session.remove()
    caller = next(s for s in spans if s.parent_span_id is None)
    callee = next(s for s in spans if s.kind == KIND_SERVER and s.parent_span_id is not None)
    at = callee.start_time
    lines = [  # (time, span, severity number, text, body), stored out of time order
        (at + 0.004, callee.span_id, 17, "ERROR", XSS_LOG_BODY),
        (at + 0.001, caller.span_id, 9, "INFO", "checkout started for cart 7"),
        (at + 0.003, callee.span_id, 13, "WARN", "retrying payment 7 after 500 ms"),
        (at + 0.002, None, 13, None, "pool nearly exhausted: 9 of 10 connections busy"),
    ]
    insert_logs(app, [log_row(t, body, service=XSS_SERVICE, severity=n, severity_text=text, trace_id=trace_id,
                              span_id=span) for t, span, n, text, body in lines])
    analyze(client)  # mines them: template ids on the rows
    return {"trace_id": trace_id, "callee_span": callee.span_id, "caller_span": caller.span_id}
