"""The silences in the store (SQLite and PostgreSQL): which one covers an incident, the order of a
list, the cap on live silences, and the gauge that reads them at scrape time."""

from __future__ import annotations

import time

import pytest

from aiops.silences import InvalidSilence
from aiops.silences import service as silences
from aiops.silences.metrics import active_silences
from aiops.store.models import iso

T = 1_800_000_000.0
INCIDENT = {"severity": "high", "root_cause": {"service": "shop", "endpoint": "payment"},
            "report": {"kind": "latency"}}


def add(now: float = T, starts: float | None = None, ends: float = T + 3600, **labels) -> str:
    body = {"matchers": [{"name": k, "value": v} for k, v in (labels or {"service": "shop"}).items()],
            "ends_at": iso(ends)}
    if starts is not None:
        body["starts_at"] = iso(starts)
    return silences.create(body, now).id


def test_of_several_the_longest_lasting_covers(app):
    with app.app_context():
        short = add(ends=T + 600)
        long = add(ends=T + 7200, endpoint="payment")
        add(ends=T + 9000, endpoint="inventory")  # another root
        add(starts=T + 60, ends=T + 99999)  # not yet
        assert silences.covering(INCIDENT, silences.active(T)).id == long
        assert silences.covering(INCIDENT, silences.active(T + 99999)) is None
        silences.expire(long, T + 10)
        assert silences.covering(INCIDENT, silences.active(T + 10)).id == short
        assert silences.count_active(T + 10) == 2


def test_list_order_active_pending_expired(app):
    with app.app_context():
        late = add(ends=T + 900)
        soon = add(ends=T + 300)
        later = add(starts=T + 600, ends=T + 1200)
        sooner = add(starts=T + 60, ends=T + 1200)
        gone = add(ends=T + 30)
        assert [s.id for s in silences.listed(T + 40)] == [soon, late, sooner, later, gone]
        assert [silences.state(s, T + 40) for s in silences.listed(T + 40)] == [
            "active", "active", "pending", "pending", "expired"]


def test_live_silences_are_capped(app, monkeypatch):
    monkeypatch.setattr(silences, "MAX_LIVE", 2)
    with app.app_context():
        add()
        expired = add()
        with pytest.raises(InvalidSilence, match="at most 2"):
            add()
        silences.expire(expired, T + 1)
        add(now=T + 2)  # room again


def test_the_gauge_reads_the_store_and_leaves_itself_out_when_it_fails(app, monkeypatch):
    with app.app_context():
        now = time.time()  # the gauge reads at the wall clock
        add(now=now, ends=now + 3600)
        [family] = active_silences()
        assert (family.name, [s.value for s in family.samples]) == ("aiops_silences_active", [1.0])

    def broken(now):
        raise RuntimeError("database is down")

    def failures(body: str) -> float:  # the counter is this process's, across tests
        line = 'aiops_scrape_errors_total{collector="silences"} '
        return float(next(x for x in body.splitlines() if x.startswith(line)).split()[-1])

    client = app.test_client()
    before = failures(client.get("/metrics").get_data(as_text=True))
    monkeypatch.setattr(silences, "count_active", broken)
    scrape = client.get("/metrics")  # the scrape goes on without it, and counts it
    body = scrape.get_data(as_text=True)
    assert scrape.status_code == 200 and "aiops_silences_active" not in body
    assert failures(body) == before + 1
