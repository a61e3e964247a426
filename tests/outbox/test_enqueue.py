"""The outbox side of notifications: what a change queues, in its own transaction.

Real SQLite and PostgreSQL (the ``app`` fixture); no HTTP here (see
tests/outbox/test_deliver.py and tests/e2e/test_notifications.py).
"""

from __future__ import annotations

from sqlalchemy import select

from aiops import outbox
from aiops.settings import reconfigure, settings_of
from aiops.store.models import Incident, Notification
from telemetry.db import begin_write, db
from tests.support.factories import payment_slow
from tests.support.incident_cycles import cycle

CHANNELS = {
    "webhook_url": "http://127.0.0.1:9/hook",
    "slack_webhook_url": "http://127.0.0.1:9/slack",
    "pagerduty_routing_key": "R0UTING",
    "pagerduty_url": "http://127.0.0.1:9/v2/enqueue",
}


def rows(**where):
    db.session.expire_all()
    query = select(Notification).order_by(Notification.id)
    for name, value in where.items():
        query = query.where(getattr(Notification, name) == value)
    return list(db.session.scalars(query))


def confirmed(app, now=1000.0):
    """An incident seen in two cycles (confirmed), its trigger queued as the cycle does it."""
    cycle(now, payment_slow())
    changes = cycle(now + 30, payment_slow())
    [incident] = changes.touched
    begin_write()
    outbox.dispatch(changes, now + 30, settings_of(app))
    db.session.commit()
    return incident.id


def test_a_trigger_goes_to_every_configured_channel_with_the_incident_id_as_dedup_key(app):
    reconfigure(app, **CHANNELS)
    with app.app_context():
        iid = confirmed(app)
        queued = rows()
        assert sorted(r.channel for r in queued) == ["pagerduty", "slack", "webhook"]
        assert {(r.event, r.dedup_key, r.status) for r in queued} == {("trigger", iid, "pending")}
        pd = rows(channel="pagerduty")[0].payload
        assert pd["event_action"] == "trigger" and pd["dedup_key"] == iid
        assert "routing_key" not in pd  # a secret: added when sent, never stored


def test_nothing_is_queued_without_channels(app):
    with app.app_context():
        confirmed(app)
        assert rows() == []


def test_nothing_is_queued_when_turned_off(app):
    reconfigure(app, **CHANNELS, notifications=False)
    with app.app_context():
        confirmed(app)
        assert rows() == []


def test_queued_rows_commit_or_roll_back_with_the_incident_change(app):
    reconfigure(app, **CHANNELS)
    with app.app_context():
        iid = confirmed(app)
        before = len(rows())
        begin_write()
        incident = db.session.get(Incident, iid)
        outbox.human_transition(incident, "acknowledge", 1100.0, "alice", "on it", settings_of(app))
        db.session.rollback()  # the change failed: neither it nor its messages exist
        assert len(rows()) == before
        assert db.session.get(Incident, iid).status == "open"


def test_acknowledge_supersedes_a_pending_trigger_and_carries_who(app):
    reconfigure(app, **CHANNELS)
    with app.app_context():
        iid = confirmed(app)
        begin_write()
        outbox.human_transition(db.session.get(Incident, iid), "acknowledge", 1100.0, "alice", "on it",
                                settings_of(app))
        db.session.commit()
        pd = rows(channel="pagerduty")
        assert [(r.event, r.status) for r in pd] == [("trigger", "superseded"), ("acknowledge", "pending")]
        assert pd[1].payload == {"event_action": "acknowledge", "dedup_key": iid}
        hook = rows(channel="webhook", event="acknowledge")[0].payload
        assert hook["actor"] == "alice" and hook["comment"] == "on it"


def test_an_unconfirmed_incident_acknowledged_by_hand_tells_nobody(app):
    reconfigure(app, **CHANNELS)
    with app.app_context():
        [incident] = cycle(1000.0, payment_slow()).opened
        begin_write()
        outbox.human_transition(db.session.get(Incident, incident.id), "resolve", 1010.0, "bob", "",
                                settings_of(app))
        db.session.commit()
        assert rows() == []


def test_trigger_class_messages_are_rate_limited_per_severity(app):
    reconfigure(app, **{**CHANNELS, "webhook_url": None, "slack_webhook_url": None})
    reconfigure(app, notify_rate_limits={"critical": 0.0, "high": 300.0, "medium": 900.0, "low": 3600.0})
    with app.app_context():
        iid = confirmed(app)  # high (45x latency): one per 300 s
        begin_write()
        incident = db.session.get(Incident, iid)
        outbox.enqueue(incident, "update", 1100.0, settings_of(app))
        db.session.commit()
        first, held = rows()
        assert first.next_attempt_at == 1030.0 and first.status == "superseded"
        assert held.event == "update" and held.next_attempt_at == 1030.0 + 300.0
        assert incident.timeline[-1]["event"] == "rate-limited"
        begin_write()
        outbox.enqueue(incident, "resolve", 1120.0, settings_of(app))  # never held, and replaces the held one
        db.session.commit()
        assert [(r.event, r.status, r.next_attempt_at) for r in rows()][1:] == [
            ("update", "superseded", 1330.0), ("resolve", "pending", 1120.0)]


def test_critical_is_never_held(app):
    reconfigure(app, **{**CHANNELS, "webhook_url": None, "slack_webhook_url": None})
    with app.app_context():
        iid = confirmed(app)
        begin_write()
        incident = db.session.get(Incident, iid)
        incident.severity = "critical"
        outbox.enqueue(incident, "update", 1031.0, settings_of(app))
        db.session.commit()
        assert rows()[-1].next_attempt_at == 1031.0


def test_no_remediation_without_a_hook_for_the_kind(app):
    reconfigure(app, remediation_errors_url="http://127.0.0.1:9/fix")
    with app.app_context():
        confirmed(app)  # a latency incident: no latency hook configured
        assert rows(channel="remediation") == []


def test_remediation_hook_is_queued_for_the_kind(app):
    reconfigure(app, remediation_latency_url="http://127.0.0.1:9/fix")
    with app.app_context():
        iid = confirmed(app)
        [row] = rows(channel="remediation")
        assert row.incident_id == iid and row.payload["kind"] == "latency"
        assert row.payload["incident"]["id"] == iid
        assert db.session.get(Incident, iid).remediation == "requested"


def test_notifications_api_filters_and_rejects_bad_parameters(app, client):
    reconfigure(app, **CHANNELS)
    with app.app_context():
        iid = confirmed(app)
    body = client.get("/aiops/notifications", query_string={"incident": iid, "channel": "webhook"}).json
    assert [(n["channel"], n["event"], n["status"]) for n in body["notifications"]] == [
        ("webhook", "trigger", "pending")]
    assert body["channels"]["webhook"]["configured"] and body["channels"]["webhook"]["pending"] == 1
    none = client.get("/aiops/notifications", query_string={"incident": "INC-none"}).json
    assert none["notifications"] == []
    for params in ({"limit": "x"}, {"limit": "0"}, {"limit": "5000"}, {"status": "lost"}, {"limit": "1_0"},
                   {"limit": "true"}, {"limit": " 5"}, {"limit": "+5"}, {"limit": "５"}):
        r = client.get("/aiops/notifications", query_string=params)
        assert r.status_code == 400 and r.json["error"] == "Bad Request", params
    assert "R0UTING" not in client.get("/aiops/notifications").get_data(as_text=True)
