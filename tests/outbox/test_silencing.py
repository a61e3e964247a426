"""Silences and the outbox, end to end through the incident lifecycle (SQLite and PostgreSQL): the
cycles as the detection cycle drives them, the outbox delivering to a real webhook receiver on
loopback, on the cycles' own clock (no sleeping).

A silenced incident is recorded and says why it stayed quiet, but pages nobody; a trigger that went
out before the silence still gets its resolve; a silence that ends lets the held trigger go.
"""

from __future__ import annotations

import pytest

from aiops import outbox
from aiops.settings import reconfigure, settings_of
from aiops.silences import service as silences
from aiops.store.models import Incident, Notification, iso
from aiops.web.incident_queries import change, to_json
from telemetry.db import begin_write, db
from tests.support.factories import payment_slow
from tests.support.incident_cycles import cycle
from tests.support.receivers import Receiver

T = 1_800_000_000.0  # the cycles' clock
RELEASED = ("unsilenced", "no silence covers it any more: the held trigger is released")


@pytest.fixture
def hook(app):
    with Receiver() as receiver:
        reconfigure(app, webhook_url=receiver.url("/hook"))
        yield receiver


def run(app, now: float, *groups) -> None:
    """One detection cycle's incident work, what it queues, and a delivery pass, at ``now``."""
    changes = cycle(now, *groups)
    begin_write()
    outbox.dispatch(changes, now, settings_of(app))
    db.session.commit()
    outbox.deliver_due(settings_of(app), now=now)


def silence(now: float, ends: float, **labels) -> str:
    matchers = [{"name": name, "value": value} for name, value in labels.items()]
    return silences.create({"matchers": matchers, "ends_at": iso(ends), "comment": "maintenance"}, now).id


def incident() -> Incident:
    db.session.rollback()
    [only] = db.session.query(Incident).all()
    return only


def sent(hook: Receiver) -> list[str]:
    return [r.json["event"] for r in hook.requests]


def events(row: Incident) -> list[tuple[str, str]]:
    return [(e["event"], e["detail"]) for e in row.timeline if e["event"] in ("silenced", "unsilenced")]


def test_a_silenced_incident_is_recorded_and_shown_but_notifies_nobody(app, hook):
    with app.app_context():
        sid = silence(T - 60, T + 3600, service="shop", endpoint="payment")
        run(app, T, payment_slow())
        run(app, T + 30, payment_slow())  # confirmed: its trigger is held back
        row = incident()
        assert row.confirmed_at == T + 30 and row.status == "open"
        assert events(row) == [("silenced", f"silenced by {sid}: trigger not sent")]
        data = to_json(row, silences.active(T + 30))  # as the API shows it at that time
        assert (data["silenced"], data["silence_id"]) == (True, sid)

        run(app, T + 60)
        run(app, T + 90)  # quiet for two cycles: resolved, and nobody was told, so nobody hears
        row = incident()
        assert row.status == "resolved"
        assert events(row)[-1] == ("silenced", f"silenced by {sid}: resolve not sent")
        assert sent(hook) == [] and db.session.query(Notification).count() == 0


def test_a_trigger_sent_before_the_silence_still_gets_its_resolve(app, hook):
    with app.app_context():
        run(app, T, payment_slow())
        run(app, T + 30, payment_slow())
        assert sent(hook) == ["trigger"]  # delivered before anyone silenced it

        sid = silence(T + 40, T + 3600, service="shop")
        run(app, T + 60, payment_slow())
        run(app, T + 90)
        run(app, T + 120)
        row = incident()
        assert row.status == "resolved" and to_json(row, silences.active(T + 120))["silenced"] is False
        assert sent(hook) == ["trigger", "resolve"]
        assert events(row) == []  # nothing was held back
        assert silences.get(sid).ends_at == T + 3600


def test_hand_acknowledge_follows_the_same_rule(app, hook):
    with app.app_context():
        sid = silence(T - 60, T + 3600, service="shop")
        run(app, T, payment_slow())
        run(app, T + 30, payment_slow())
        iid = incident().id
        change(iid, "acknowledge", "alice", "on it", settings_of(app), now=T + 40)
        outbox.deliver_due(settings_of(app), now=T + 40)
        assert sent(hook) == []
        assert events(incident())[-1] == ("silenced", f"silenced by {sid}: acknowledge not sent")


def test_when_the_silence_ends_the_held_trigger_goes_out(app, hook):
    with app.app_context():
        sid = silence(T - 60, T + 45, kind="latency")
        run(app, T, payment_slow())
        run(app, T + 30, payment_slow())
        assert sent(hook) == []
        run(app, T + 60, payment_slow())  # the silence ended at T + 45; the fault goes on
        row = incident()
        assert sent(hook) == ["trigger"]
        assert events(row) == [("silenced", f"silenced by {sid}: trigger not sent"), RELEASED]
        run(app, T + 90, payment_slow())
        assert sent(hook) == ["trigger"]  # once
        run(app, T + 120)
        run(app, T + 150)
        assert sent(hook) == ["trigger", "resolve"]


def test_a_silence_that_matches_another_root_changes_nothing(app, hook):
    with app.app_context():
        silence(T - 60, T + 3600, service="shop", endpoint="inventory")
        silence(T - 60, T + 3600, severity="low")
        run(app, T, payment_slow())
        run(app, T + 30, payment_slow())
        assert sent(hook) == ["trigger"] and events(incident()) == []


def test_without_channels_the_timeline_says_it_once(app):
    with app.app_context():
        sid = silence(T - 60, T + 45, service="shop")
        for n in range(5):
            run(app, T + 30 * n, payment_slow())
        assert events(incident()) == [("silenced", f"silenced by {sid}: trigger not sent"), RELEASED]
