"""The incident page shows the example trace's log lines and the templates that appeared, escaped.

A real cycle over real SQLite/PostgreSQL, with a log feed registered on the app (as the log store
will register one): hostile log bodies end up on the page as text.
"""

from __future__ import annotations

import time

from markupsafe import escape

from aiops.logs import feed as logfeed
from aiops.logs import signals as ls
from telemetry.columns import KIND_SERVER, SPAN_FIELDS
from tests.support.factories import insert_logs, log_row
from tests.support.factories import insert_spans as insert
from tests.support.hostile_pages import (
    XSS_CALLEE,
    XSS_LOG_BODY,
    XSS_SERVICE,
    analyze,
    assert_inert,
    incident_json,
    seed_hostile_incident,
    seed_trace_logs,
)
from tests.support.hostile_pages import hostile_trace as _trace

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
    patterns = doc.texts_of_class("log-pattern")  # the templates that changed, in a table of their own
    assert patterns and patterns[0].startswith(XSS_SERVICE) and "failed" in patterns[0]
    template_id = root_hop["templates"][0]["template_id"]
    assert isinstance(template_id, int) and f"#{template_id}" in patterns[0]  # links to the template's lines
    assert f"template_id={template_id}" in html


def test_the_example_traces_lines_are_read_from_the_store_and_mark_their_spans(app, client):
    """The waterfall marks the span that logged ERROR/WARN lines and lists them under it; the trace's
    lines follow, in time order with their severity and template, every hostile body as text."""
    incident_id = seed_hostile_incident(app, client)
    seeded = seed_trace_logs(app, client, incident_id)
    r = client.get(f"/incidents/{incident_id}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    doc = assert_inert(html)
    assert str(escape(XSS_LOG_BODY)) in html

    badges = doc.texts_of_class("wf-logs")
    assert badges == ["2 logs"]  # the callee's ERROR and WARN; the caller's INFO marks nothing
    assert doc.texts_of_class("wf-log") == ["WARN retrying payment 7 after 500 ms", f"ERROR {XSS_LOG_BODY}"]
    lines = doc.texts_of_class("trace-log")
    times = [line.split(" ")[0] for line in lines]
    assert times == sorted(times)  # time order, though stored out of it
    assert [line.split(XSS_SERVICE)[1].split()[0] for line in lines] == ["INFO", "WARN", "WARN", "ERROR"]
    assert XSS_LOG_BODY in lines[-1]
    links = [a["href"] for tag, a in doc.tags if tag == "a" and "template_id=" in a.get("href", "")]
    assert len(links) == 4 and all("service=" in link for link in links)
    every = f"/logs?trace_id={seeded['trace_id']}"
    assert any(attrs.get("href") == every for tag, attrs in doc.tags if tag == "a")

    # The template link lists that template's lines on the logs page.
    page = client.get(links[-1].replace("&amp;", "&"))
    assert page.status_code == 200
    assert str(escape(XSS_LOG_BODY)) in page.get_data(as_text=True)
    assert "retrying payment" not in page.get_data(as_text=True)


def test_long_trace_lines_are_bounded_on_the_incident_page(app, client):
    from aiops.web import log_queries as log_service

    incident_id = seed_hostile_incident(app, client)
    trace_id = incident_json(client, incident_id)["trace_correlation"]["trace_id"]
    insert_logs(app, [log_row(time.time() - 1 + i * 1e-4, "x" * 5000, severity=17, trace_id=trace_id)
                      for i in range(log_service.MAX_TRACE_LINES + 5)])
    doc = assert_inert(client.get(f"/incidents/{incident_id}").get_data(as_text=True))
    lines = doc.texts_of_class("trace-log")
    assert len(lines) == log_service.MAX_TRACE_LINES
    assert all(len(line) < log_service.MAX_SHOWN_BODY + 100 for line in lines)
    assert f"The first {log_service.MAX_TRACE_LINES} lines" in doc.plain


def test_only_error_and_warn_lines_of_laid_out_spans_mark_the_waterfall():
    from types import SimpleNamespace

    from aiops.web import waterfall

    spans = [SimpleNamespace(span_id=sid, parent_span_id=None, start_time=1.0, duration_ms=5.0, kind=2,
                             service="s", endpoint="e") for sid in ("a", "b")]
    rows = waterfall.layout(spans)
    severities = (9, 13, 17, 21, 17)
    lines = [{"span_id": "a", "severity_number": n, "body": str(i)} for i, n in enumerate(severities)]
    lines += [{"span_id": "zz", "severity_number": 17}, {"span_id": None, "severity_number": 17}]
    waterfall.mark_logs(rows, lines, max_lines=3)
    marked = {r["span"].span_id: (r["log_count"], [x["body"] for x in r["logs"]]) for r in rows}
    assert marked == {"a": (4, ["1", "2", "3"]), "b": (0, [])}
