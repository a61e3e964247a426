"""Mined log templates are stored: ids on the log rows, ``log_templates``, and a memory that
survives a restart and a change of process (real cycles on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from aiops.logs import feed as logfeed
from aiops.logs import paths as logpaths
from aiops.logs import signals as ls
from aiops.logs import storage as logstate
from aiops.store.models import LogMiner, LogState, LogTemplate
from telemetry.db import db
from telemetry.models import LogRecord
from tests.conftest import dispose_app, make_app, sqlite_only
from tests.support.factories import insert_logs, log_row


def cycle_over(app, bodies: list[str], service: str = "orders", severity: int = 9) -> None:
    at = time.time() - 5
    insert_logs(app, [log_row(at + i * 0.01, body, service=service, severity=severity)
                      for i, body in enumerate(bodies)])
    assert app.test_client().post("/aiops/analyze").status_code == 200


def ids_by_body(app) -> dict[str, set[int | None]]:
    with app.app_context():
        out: dict[str, set] = {}
        for body, template_id in db.session.execute(select(LogRecord.body, LogRecord.template_id)):
            out.setdefault(body, set()).add(template_id)
        db.session.remove()
        return out


def templates(app) -> dict[tuple[str, int], LogTemplate]:
    with app.app_context():
        rows = {(t.service, t.template_id): t for t in db.session.scalars(select(LogTemplate))}
        db.session.expunge_all()
        db.session.remove()
        return rows


PAID = [f"order {n} paid by card {n * 7}" for n in range(6)]
FAILED = [f"java.lang.IllegalStateException: refund {n} failed" for n in range(4)]


def test_a_cycle_writes_template_ids_on_the_rows_and_the_templates(app):
    cycle_over(app, PAID + FAILED, severity=17)
    ids = ids_by_body(app)
    paid = {i for body in PAID for i in ids[body]}
    failed = {i for body in FAILED for i in ids[body]}
    assert len(paid) == 1 and len(failed) == 1 and paid != failed and None not in paid | failed
    rows = templates(app)
    paid_row, failed_row = rows["orders", paid.pop()], rows["orders", failed.pop()]
    assert (paid_row.count, paid_row.exception) == (6, False)
    assert (failed_row.count, failed_row.exception) == (4, True)
    # mined under its severity band
    assert paid_row.template == "ERROR order <NUM> paid by card <NUM>" and "refund" in failed_row.template
    assert paid_row.first_seen <= paid_row.last_seen

    cycle_over(app, PAID[:2], severity=17)  # more of the same kind (and band): same id, counted on
    again = templates(app)["orders", paid_row.template_id]
    assert again.count == 8 and again.first_seen == paid_row.first_seen
    assert again.last_seen > paid_row.last_seen


def test_template_ids_survive_a_restart(db_url):
    first = make_app(db_url)
    try:
        cycle_over(first, PAID)
        cycle_over(first, FAILED)
        before = ids_by_body(first)
    finally:
        dispose_app(first)
    restarted = make_app(db_url)  # a new process: its memory starts empty, then loads the saved one
    try:
        assert logfeed.registered(restarted).version is None
        cycle_over(restarted, ["order 99 paid by card 5", "a line of a kind never seen before"])
        after = ids_by_body(restarted)
        assert after["order 99 paid by card 5"] == before[PAID[0]]
        new = after["a line of a kind never seen before"]
        assert new.isdisjoint(before[PAID[0]] | before[FAILED[0]])
        with restarted.app_context():
            assert db.session.scalar(select(LogState.version)) == 3
            assert logfeed.registered(restarted).version == 3
            # The feed resumed where the saved memory stopped: no line was mined twice.
            assert templates(restarted)["orders", min(before[PAID[0]])].count == len(PAID) + 1
            db.session.remove()
    finally:
        dispose_app(restarted)


def test_two_processes_taking_turns_keep_one_memory(app_factory):
    one, two = app_factory(), app_factory()
    cycle_over(one, PAID)
    cycle_over(two, FAILED)  # two loads what one saved
    cycle_over(one, ["order 7 paid by card 3"])  # one sees two's save and reloads
    ids = ids_by_body(one)
    assert ids["order 7 paid by card 3"] == ids[PAID[0]]
    assert ids[FAILED[0]] != ids[PAID[0]]
    assert logfeed.registered(one).version == logfeed.registered(two).version + 1 == 3
    assert sum(t.count for t in templates(one).values()) == len(PAID) + len(FAILED) + 1


def test_a_system_without_logs_writes_no_log_memory(app):
    assert app.test_client().post("/aiops/analyze").status_code == 200
    with app.app_context():
        assert db.session.scalar(select(LogState.version)) is None
        assert db.session.scalars(select(LogMiner)).all() == []
        db.session.remove()


def test_a_failed_cycle_forgets_and_the_next_reloads_the_saved_memory(app):
    cycle_over(app, PAID)
    reg = logfeed.registered(app)
    logstate.forget(reg)
    reg.memory = logfeed.LogMemory()  # what a failed cycle judged is dropped; the saved one comes back
    cycle_over(app, ["order 8 paid by card 2"])
    ids = ids_by_body(app)
    assert ids["order 8 paid by card 2"] == ids[PAID[0]]


def test_baselines_round_trip_through_json():
    paths = logpaths.PathBaselines(windows={("orders", "/pay"): 5}, requests={("orders", "/pay"): 12.5},
                                   present={("orders", "/pay"): {3: 11.0, 7: 0.5}})
    base = ls.LogBaselines(windows={"orders": 4}, warn_rate={"orders": 0.5}, traffic={"orders": 20.0},
                           template_rate={("orders", 3): 1.25, ("pay", 1): float("nan")},
                           seen_in_normal={("orders", 3)}, paths=paths)
    back = logstate.decode_baselines(json.loads(json.dumps(logstate.encode_baselines(base))))
    assert back.windows == {"orders": 4} and back.warn_rate == {"orders": 0.5}
    assert back.traffic == {"orders": 20.0}
    assert back.template_rate == {("orders", 3): 1.25, ("pay", 1): 0.0}
    assert back.seen_in_normal == {("orders", 3)}
    assert back.paths == paths  # the vanished-path baselines, nested dicts with int keys included
    assert logstate.decode_baselines("not a dict") == ls.LogBaselines()


def test_the_api_filters_lines_by_template_and_pages_the_templates(app, client):
    cycle_over(app, PAID + FAILED, severity=17)
    cycle_over(app, ["stock reserved for item 5"], service="inventory")
    paid_id = min(ids_by_body(app)[PAID[0]])
    r = client.get("/aiops/logs", query_string={"service": "orders", "template_id": str(paid_id)})
    assert r.status_code == 200
    lines = r.get_json()["logs"]
    assert sorted(x["body"] for x in lines) == sorted(PAID)
    assert {x["template_id"] for x in lines} == {paid_id}

    r = client.get("/aiops/logs/templates", query_string={"service": "orders"})
    listed = r.get_json()["templates"]
    assert r.status_code == 200 and {t["service"] for t in listed} == {"orders"} and len(listed) == 2
    paid = next(t for t in listed if t["template_id"] == paid_id)
    assert paid["template"] == "ERROR order <NUM> paid by card <NUM>" and paid["count"] == 6
    assert paid["exception"] is False and paid["first_seen"].endswith("Z")
    assert [t["service"] for t in client.get("/aiops/logs/templates?text=STOCK").get_json()["templates"]] == [
        "inventory"]

    seen, cursor = [], None
    while True:
        args = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = client.get("/aiops/logs/templates", query_string=args).get_json()
        seen += [(t["service"], t["template_id"]) for t in page["templates"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 3
    assert seen[0][0] == "inventory"  # newest first


@pytest.mark.parametrize("path,args", [
    ("/aiops/logs", {"template_id": "0"}), ("/aiops/logs", {"template_id": "-1"}),
    ("/aiops/logs", {"template_id": "abc"}), ("/aiops/logs", {"template_id": "1.5"}),
    ("/aiops/logs", {"template_id": "99999999999"}), ("/aiops/logs", {"template_id": " 5"}),
    ("/aiops/logs", {"template_id": ""}), ("/aiops/logs", {"template_id": "٣"}),
    ("/aiops/logs/templates", {"limit": "0"}), ("/aiops/logs/templates", {"limit": "1001"}),
    ("/aiops/logs/templates", {"cursor": "nope"}), ("/aiops/logs/templates", {"service": "a\x00b"}),
    ("/aiops/logs/templates", {"text": "x" * 201}),
])
@sqlite_only
def test_bad_template_parameters_are_400(client, path, args):
    r = client.get(path, query_string=args)
    assert r.status_code == 400 and r.get_json()["error"] == "Bad Request", args
    assert r.get_json()["message"]


def test_a_logs_cursor_is_not_a_templates_cursor(app, client):
    cycle_over(app, PAID)
    cursor = client.get("/aiops/logs?limit=1").get_json()["next"]
    assert cursor
    assert client.get("/aiops/logs/templates", query_string={"cursor": cursor}).status_code == 400


def test_the_logs_page_filters_by_template_and_a_bad_id_is_the_400_page(app, client):
    cycle_over(app, PAID + FAILED)
    paid_id = min(ids_by_body(app)[PAID[0]])
    html = client.get(f"/logs?service=orders&template_id={paid_id}").get_data(as_text=True)
    assert all(body in html for body in PAID) and not any(body in html for body in FAILED)
    assert f"template_id={paid_id}" in html and f"#{paid_id}<" in html
    bad = client.get("/logs?template_id=<b>", headers={"Accept": "text/html"})
    assert bad.status_code == 400 and bad.mimetype == "text/html" and "<b>" not in bad.get_data(as_text=True)
