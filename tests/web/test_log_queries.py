"""``GET /aiops/logs``: filters and keyset pages in SQL (both backends), and bad values as 400s."""

from __future__ import annotations

import pytest

from telemetry.db import db
from telemetry.store import insert_logs
from tests.conftest import sqlite_only

T = 1_760_000_000.0
TRACE = "0af7651916cd43dd8448eb211c80319c"


def _store(app, rows) -> None:
    with app.app_context():
        insert_logs(db.engine, rows)


def _rows() -> list[tuple]:
    rows = []
    for i in range(30):
        severity, text = ((17, "ERROR") if i % 3 == 0 else (9, "INFO"))
        service = "orders" if i % 2 else "payments"
        body = f"Payment 100% declined #{i}" if i % 5 == 0 else f"request {i} served"
        rows.append((T + i, service, severity, text, body, TRACE if i == 7 else None,
                     "00f067aa0ba902b7" if i == 7 else None, '{"exception.type": "ValueError"}'))
    return rows


def _get(client, **args):
    r = client.get("/aiops/logs", query_string=args)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_filters_and_pages(app, client):
    _store(app, _rows())
    everything = _get(client, limit=1000)["logs"]
    assert [x["timestamp"] for x in everything] == [T + i for i in reversed(range(30))]
    first = everything[0]
    assert first["time"] == "2025-10-09T08:53:49.000Z"
    assert first["attributes"] == {"exception.type": "ValueError"}

    assert {x["service"] for x in _get(client, service="orders")["logs"]} == {"orders"}
    assert {x["severity_text"] for x in _get(client, severity="error")["logs"]} == {"ERROR"}
    assert len(_get(client, severity="17")["logs"]) == 10
    assert len(_get(client, severity="WARNING")["logs"]) == 10
    assert [x["body"] for x in _get(client, text="100%")["logs"]] == [
        f"Payment 100% declined #{i}" for i in (25, 20, 15, 10, 5, 0)]
    assert _get(client, text="PAYMENT 100% DECLINED #2")["logs"][0]["body"] == "Payment 100% declined #25"
    assert _get(client, text="0_")["logs"] == []  # LIKE wildcards are literal
    [traced] = _get(client, trace_id=TRACE.upper())["logs"]
    assert (traced["trace_id"], traced["span_id"]) == (TRACE, "00f067aa0ba902b7")
    ranged = _get(client, **{"from": str(T + 10), "to": "2025-10-09T08:53:32Z"})["logs"]
    assert [x["timestamp"] for x in ranged] == [T + 12, T + 11, T + 10]
    assert len(_get(client, **{"from": "2025-10-09T08:53:40"})["logs"]) == 10  # no offset: UTC

    seen, cursor = [], None
    while True:
        page = _get(client, limit=7, service="payments", **({"cursor": cursor} if cursor else {}))
        seen += [x["id"] for x in page["logs"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [x["id"] for x in everything if x["service"] == "payments"]


@pytest.mark.parametrize("args", [
    {"severity": "loud"}, {"severity": "25"}, {"trace_id": "xyz"}, {"trace_id": "ab" * 17},
    {"from": "yesterday"}, {"to": "nan"}, {"to": ""}, {"severity": ""}, {"from": "1e999"},
    {"from": "2026-13-01"},
    {"limit": "0"}, {"limit": "5000"},
    {"cursor": "nope"}, {"text": "x" * 201}, {"service": "a\x00b"},
])
@sqlite_only
def test_bad_values_are_400(client, args):
    r = client.get("/aiops/logs", query_string=args)
    assert r.status_code == 400 and r.get_json()["error"] == "Bad Request", args


def test_the_logs_page_filters_escapes_and_pages(app, client):
    hostile = '<script>alert(1)</script>'
    rows = _rows()
    rows[29] = (T + 29, "orders", 17, "ERROR", hostile, TRACE, None, None)
    _store(app, rows)
    html = client.get("/logs?limit=5").get_data(as_text=True)
    assert hostile not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count('<tr class="log') == 5 and 'id="next"' in html
    assert f'href="/logs?trace_id={TRACE}"' in html
    filtered = client.get("/logs?service=orders&severity=error&text=&from=").get_data(as_text=True)
    assert filtered.count('<tr class="log') == 6  # odd i and a multiple of 3 (5), and the hostile line
    assert 'href="/logs"' in client.get("/").get_data(as_text=True)  # linked from the nav

    bad = client.get("/logs?severity=loud", headers={"Accept": "text/html"})
    assert bad.status_code == 400 and bad.mimetype == "text/html"
