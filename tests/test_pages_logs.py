"""The incident page shows the example trace's log lines and the templates that appeared, escaped.

A real cycle over real SQLite/PostgreSQL, with a log feed registered on the app (as the log store
will register one): hostile log bodies end up on the page as text.
"""

from __future__ import annotations

import time

from markupsafe import escape

from aiops import logfeed
from aiops import logsignals as ls
from telemetry.models import KIND_SERVER, SPAN_FIELDS
from tests.factories import insert_spans as insert
from tests.hostile_pages import XSS_CALLEE, analyze, assert_inert, incident_json
from tests.hostile_pages import hostile_trace as _trace

XSS_LOG = "<script>document.title='pwned-log'</script> refund 42 failed"
F = {name: i for i, name in enumerate(SPAN_FIELDS)}


class ListFeed:
    def __init__(self):
        self.lines: list[ls.LogRecord] = []

    def take(self, until):
        taken = [r for r in self.lines if r.time < until]
        self.lines = [r for r in self.lines if r.time >= until]
        return taken


def test_log_lines_and_templates_are_shown_escaped_on_the_incident_page(app, client):
    feed = ListFeed()
    logfeed.register(app, feed, logfeed.LogMemory(rules=ls.LogRules(min_windows=1)))
    now = time.time()
    normal = [r for i in range(25) for r in _trace(now - 120 + i, 100.0, 50.0, failing=False)]
    feed.lines = [ls.LogRecord(r[F["start_time"]], r[F["service"]], 9, "handled request")
                  for r in normal if r[F["kind"]] == KIND_SERVER]
    insert(app, normal)
    assert analyze(client)["incidents_opened"] == []
    failing = [r for i in range(10) for r in _trace(now - 30 + i, 1100.0, 1000.0, failing=True)]
    feed.lines = [ls.LogRecord(r[F["start_time"]] + 0.01, r[F["service"]], 17, XSS_LOG, r[F["trace_id"]],
                               r[F["span_id"]])
                  for r in failing if r[F["kind"]] == KIND_SERVER and r[F["endpoint"]] == XSS_CALLEE]
    insert(app, failing)
    opened = analyze(client)["incidents_opened"]
    assert len(opened) == 1
    data = incident_json(client, opened[0])
    root_hop = data["propagation_path"][0]
    assert root_hop["log_lines"] and XSS_LOG in root_hop["log_lines"][0]["body"]
    assert root_hop["templates"] and "failed" in root_hop["templates"][0]["template"]

    html = client.get(f"/incidents/{opened[0]}").get_data(as_text=True)
    doc = assert_inert(html)
    assert str(escape(XSS_LOG)) in html
    assert doc.elements_with_class("log-line") and doc.elements_with_class("log-template")
