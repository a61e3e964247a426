"""The incident service through the API and the pages: paged, filtered lists in a constant number
of SQL statements, domain errors mapped to HTTP in one place. SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from aiops.store.models import Notification
from aiops.web import incident_queries as incident_service
from aiops.web import pagination
from telemetry.db import db
from tests.conftest import dispose_app, make_app, sqlite_only
from tests.support.incident_rows import add_incidents

TOKEN = "service-token"


@pytest.fixture
def app(db_url):
    # Requests not recorded: the span writer's statements would be counted with the view's.
    app = make_app(db_url, PROPAGATE_EXCEPTIONS=False, AIOPS_RECORD_REQUESTS=False)
    yield app
    dispose_app(app)


@contextmanager
def counting_statements(app):
    """Every SQL statement the app's engine runs meanwhile."""
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def all_pages(client, path: str) -> list[dict]:
    pages, url = [], path
    while True:
        r = client.get(url)
        assert r.status_code == 200, r.get_json()
        pages.append(r.get_json())
        cursor = pages[-1]["next"]
        if cursor is None:
            return pages
        url = f"{path}{'&' if '?' in path else '?'}cursor={cursor}"
        assert len(pages) < 100


# -- lists ------------------------------------------------------------------------------


def test_pages_of_incidents_cover_each_list_once_newest_first(app, client):
    add_incidents(app, 11)
    # Two incidents last seen in the same second: the id orders them, none is skipped or repeated.
    add_incidents(app, 2, start=20, last_seen=1005.0)
    whole = client.get("/aiops/incidents").get_json()
    assert whole["next"] is None
    pages = all_pages(client, "/aiops/incidents?limit=2")
    assert len(pages) == 4  # 8 active (2 per page), 5 resolved
    for name in ("active_incidents", "resolved_incidents"):
        paged = [i["id"] for p in pages for i in p[name]]
        assert paged == [i["id"] for i in whole[name]]
        assert all(len(p[name]) <= 2 for p in pages)
        seen = [(i["last_seen"], i["id"]) for i in whole[name]]
        assert seen == sorted(seen, reverse=True)
    assert len(whole["active_incidents"]) == 8 and len(whole["resolved_incidents"]) == 5
    # Same shape as one incident, report and all.
    first = whole["active_incidents"][0]
    assert first == client.get(f"/aiops/incidents/{first['id']}").get_json()
    assert first["report"]["kind"] == "latency" and len(first["anomalies"]) == 3


def test_filters_narrow_the_lists_in_sql(app, client):
    add_incidents(app, 3, severity="low")
    add_incidents(app, 3, start=10, severity="critical", service="payments-api")

    def ids(query):
        body = client.get(f"/aiops/incidents?{query}").get_json()
        return {i["id"] for i in body["active_incidents"]}, {i["id"] for i in body["resolved_incidents"]}

    active, resolved = ids("status=resolved")
    assert active == set() and resolved == {"INC-1000-0", "INC-1012-12"}
    active, resolved = ids("status=open&severity=critical")
    assert active == {"INC-1010-10", "INC-1011-11"} and resolved == set()
    active, resolved = ids("service=payments-api")
    assert active == {"INC-1010-10", "INC-1011-11"} and resolved == {"INC-1012-12"}
    assert ids("service=nobody") == (set(), set())
    assert ids("status=acknowledged") == (set(), set())


@pytest.mark.parametrize("query", [
    "limit=0", "limit=501", "limit=abc", "limit=1_000", "limit=+5", "limit=", "limit=-1",
    "status=closed", "status=", "severity=urgent", "cursor=garbage", "cursor=",
    "cursor=" + base64.urlsafe_b64encode(b'{"active":[1,2],"resolved":null}').decode(),
    "cursor=" + base64.urlsafe_b64encode(b'{"active":["x","INC-1"],"resolved":null}').decode(),
    "cursor=" + base64.urlsafe_b64encode(b'{"notifications":null}').decode(),
    "service=" + "x" * 600, "service=a%00b",
])
@sqlite_only
def test_bad_list_parameters_are_a_clear_400(client, query):
    r = client.get(f"/aiops/incidents?{query}")
    assert r.status_code == 400 and r.is_json
    body = r.get_json()
    assert body["error"] == "Bad Request" and body["message"]


def test_a_page_of_incidents_costs_the_same_statements_for_any_count(app, client):
    """No N+1: the incidents, then all their anomalies at once, whatever N is."""
    client.get("/aiops/incidents")  # first request: schema check
    counts = {}
    for total in (3, 30):
        add_incidents(app, total - sum(counts), start=sum(counts), anomalies=4)
        with counting_statements(app) as statements:
            body = client.get("/aiops/incidents").get_json()
        assert len(body["active_incidents"]) + len(body["resolved_incidents"]) == total
        assert all(len(i["anomalies"]) == 4 for i in body["active_incidents"])
        counts[total] = len(statements)
    assert counts[3] == counts[30], counts
    assert counts[30] <= 6, counts  # two lists, their anomalies, the transaction


def test_the_dashboard_lists_a_page_and_counts_the_rest_without_loading_anomalies(app, client, monkeypatch):
    from aiops.web import pages

    monkeypatch.setattr(pages, "DASHBOARD_ACTIVE", 5)
    client.get("/")
    counts = {}
    for total in (4, 40):
        add_incidents(app, total - sum(counts), start=sum(counts), anomalies=4)
        with counting_statements(app) as statements:
            html = client.get("/").get_data(as_text=True)
        counts[total] = sum("anomalies" in s for s in statements)
    assert counts == {4: 0, 40: 0}
    active = 40 - len(range(0, 40, 3))
    assert f"Active incidents ({active}) <span class=\"muted\">newest 5 shown</span>" in html
    assert html.count('<tr class="incident">') == 5 + 14  # 5 active, every resolved one up to 20


# -- notifications ------------------------------------------------------------------------


def add_notifications(app, count: int) -> None:
    with app.app_context():
        for n in range(count):
            db.session.add(Notification(
                channel="webhook" if n % 2 else "slack", incident_id=f"INC-1-{n % 3}", event="trigger",
                dedup_key="k", severity="high", payload={}, status="delivered" if n % 4 else "failed",
                attempts=1, created_at=1000.0 + n // 2, next_attempt_at=1000.0,
            ))
        db.session.commit()


def test_notification_history_pages_with_a_cursor(app, client):
    add_notifications(app, 9)
    whole = client.get("/aiops/notifications").get_json()
    assert whole["next"] is None and len(whole["notifications"]) == 9
    pages = all_pages(client, "/aiops/notifications?limit=4")
    assert [len(p["notifications"]) for p in pages] == [4, 4, 1]
    assert [n["id"] for p in pages for n in p["notifications"]] == [n["id"] for n in whole["notifications"]]
    filtered = all_pages(client, "/aiops/notifications?limit=1&channel=webhook&status=delivered")
    rows = [n for p in filtered for n in p["notifications"]]
    assert rows and all(n["channel"] == "webhook" and n["status"] == "delivered" for n in rows)
    assert len(rows) == sum(1 for n in whole["notifications"]
                            if n["channel"] == "webhook" and n["status"] == "delivered")


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "status=sent", "cursor=nope",
                                   "incident=a%00b"])
@sqlite_only
def test_bad_notification_parameters_are_a_400(client, query):
    r = client.get(f"/aiops/notifications?{query}")
    assert r.status_code == 400 and r.get_json()["error"] == "Bad Request"


# -- transitions and their errors -------------------------------------------------------------


def test_transition_errors_are_json_for_the_api_and_html_for_the_pages(app, client):
    [iid] = add_incidents(app, 1, start=1)
    r = client.post(f"/aiops/incidents/{iid}/resolve", json={"by": "alice"})
    assert r.status_code == 200 and r.get_json()["status"] == "resolved"
    assert r.get_json()["report"]["summary"]
    again = client.post(f"/aiops/incidents/{iid}/acknowledge")
    assert again.status_code == 409 and again.get_json() == {
        "error": "Conflict", "message": f"{iid} is already resolved"}
    missing = client.post("/aiops/incidents/INC-9-9/resolve")
    assert missing.status_code == 404 and missing.get_json()["error"] == "Not Found"
    assert client.get("/aiops/incidents/" + "x" * 300).status_code == 404
    assert client.get("/aiops/incidents/a%00b").status_code == 404
    bad = client.post(f"/aiops/incidents/{iid}/resolve", json={"by": 5})
    assert bad.status_code == 400 and "'by'" in bad.get_json()["message"]
    page = client.get("/incidents/INC-9-9")
    assert page.status_code == 404 and page.mimetype == "text/html"


# -- pure parts ------------------------------------------------------------------------------


def test_cursors_round_trip_and_refuse_what_was_not_given_out():
    cursor = pagination.encode({"active": (1000.25, "INC-1"), "resolved": None})
    assert pagination.decode(cursor, ("active", "resolved"), str) == {"active": (1000.25, "INC-1"),
                                                                      "resolved": None}
    for bad in ("", "%%%", "e30", cursor + "x" * 2000,
                base64.urlsafe_b64encode(json.dumps({"active": [float("inf"), "a"], "resolved": None})
                                         .encode()).decode(),
                base64.urlsafe_b64encode(b'{"active":[true,"a"],"resolved":null}').decode(),
                base64.urlsafe_b64encode(b'[1,2]').decode()):
        with pytest.raises(ValueError):
            pagination.decode(bad, ("active", "resolved"), str)
    with pytest.raises(ValueError):
        pagination.decode(pagination.encode({"n": (1.0, 2**70)}), ("n",), int)


def test_limits_are_plain_decimals_within_bounds():
    assert pagination.parse_limit(None, 100, 500) == 100
    assert pagination.parse_limit("500", 100, 500) == 500
    for bad in ("0", "501", "1_0", " 5", "+5", "٣", "", "5.0"):
        with pytest.raises(ValueError):
            pagination.parse_limit(bad, 100, 500)


def test_filters_say_which_lists_they_can_fill():
    f = incident_service.IncidentFilter
    assert f().shows("active") and f().shows("resolved")
    assert f(status="resolved").shows("resolved") and not f(status="resolved").shows("active")
    assert f(status="acknowledged").shows("active") and not f(status="open").shows("resolved")
