"""Delivering the notification outbox to real HTTP receivers on loopback (SQLite and PostgreSQL).

Rows are inserted directly; ``deliver_due`` is driven with an explicit ``now``
that the tests advance past ``next_attempt_at`` instead of sleeping.
"""

from __future__ import annotations

import random
import threading
from email.utils import formatdate

import pytest
from sqlalchemy import select, update

from aiops import outbox
from aiops.outbox import deliver_due, sender, stats, store
from aiops.outbox.policy import backoff, breaker_after, breaker_state, classify, retry_after
from aiops.settings import Settings, reconfigure, settings_of
from aiops.store.models import ChannelState, Incident, Notification
from aiops.web.incident_queries import notification_history
from telemetry.db import begin_write, db
from tests.support.factories import T0, add_incident
from tests.support.factories import add_notification as add_row
from tests.support.factories import notification as row
from tests.support.receivers import Receiver, Reply


@pytest.fixture
def receiver():
    with Receiver() as hook:
        yield hook


def timeline(incident_id: str = "INC-1") -> list[dict]:
    db.session.rollback()
    return db.session.get(Incident, incident_id).timeline


def channel(name: str) -> ChannelState:
    db.session.rollback()
    return db.session.get(ChannelState, name)


def drive(app, row_id: int, now: float, rounds: int) -> float:
    """Call deliver_due ``rounds`` times, each time at the row's next attempt; the last ``now``."""
    for _ in range(rounds):
        deliver_due(settings_of(app), now=now)
        current = row(row_id)
        if current.status != "pending":
            break
        now = current.next_attempt_at
    return now


# --- pure decisions ------------------------------------------------------------------------------


def test_classify():
    assert [classify(c) for c in (200, 202, 204)] == ["delivered"] * 3
    assert [classify(c) for c in (None, 429, 500, 502, 503, 504)] == ["retry"] * 6
    assert [classify(c) for c in (301, 302, 400, 401, 403, 404, 413, 422)] == ["permanent"] * 8


def test_backoff_equal_jitter_stays_within_half_step_and_cap():
    assert backoff(1, 2.0, 300.0, rand=lambda: 0.0) == 1.0
    assert backoff(1, 2.0, 300.0, rand=lambda: 1.0) == 2.0
    assert backoff(4, 2.0, 300.0, rand=lambda: 0.0) == 8.0
    assert backoff(4, 2.0, 300.0, rand=lambda: 1.0) == 16.0
    assert backoff(0, 2.0, 300.0, rand=lambda: 1.0) == 2.0  # treated as the first attempt
    rng = random.Random(7)
    for attempt in range(1, 2000, 7):  # huge attempts do not overflow
        wait = backoff(attempt, 2.0, 300.0, rand=rng.random)
        step = min(300.0, 2.0 * 2 ** min(attempt - 1, 64))
        assert 0.0 <= step / 2 <= wait <= step <= 300.0


def test_retry_after_seconds_dates_and_garbage():
    now = 1_800_000_000
    assert retry_after("120", now) == 120.0
    assert retry_after(" 0 ", now) == 0.0
    assert retry_after("1.5", now) == 1.5
    assert retry_after("86400", now) == 3600.0  # capped
    assert retry_after(formatdate(now + 30, usegmt=True), now) == 30.0
    assert retry_after(formatdate(now + 86400, usegmt=True), now) == 3600.0
    assert retry_after(formatdate(now - 30, usegmt=True), now) == 0.0  # already passed
    for junk in (None, "", "  ", "-5", "soon", "12abc", "NaN", "inf", "Mon, 99 Foo 2026"):
        assert retry_after(junk, now) is None, junk


def test_breaker_decisions():
    assert breaker_state(None, 10.0) == "closed"
    assert breaker_state(20.0, 10.0) == "open"
    assert breaker_state(10.0, 10.0) == "half-open"
    rules = {"threshold": 3, "cooldown": 60.0, "now": 100.0}
    assert breaker_after(1, None, "retry", probe=False, **rules) == (2, None)
    assert breaker_after(2, None, "retry", probe=False, **rules) == (3, 160.0)
    assert breaker_after(2, None, "permanent", probe=False, **rules) == (2, None)  # not counted
    assert breaker_after(5, 150.0, "delivered", probe=True, **rules) == (0, None)
    assert breaker_after(3, 150.0, "retry", probe=True, **rules) == (4, 160.0)
    assert breaker_after(3, 150.0, "permanent", probe=True, **rules) == (3, None)  # receiver is up


def test_notify_lease_outlasts_a_send_unless_set():
    assert Settings().notify_lease_seconds == 60.0
    assert Settings(notify_timeout=30.0).notify_lease_seconds == 120.0
    assert Settings(notify_timeout=30.0, notify_lease=10.0).notify_lease_seconds == 10.0


# --- delivery over real HTTP ---------------------------------------------------------------------


def test_pagerduty_202_is_delivered_with_a_timeline_entry(app, receiver):
    receiver.script(202)
    reconfigure(app, pagerduty_url=receiver.url("/v2/enqueue"), pagerduty_routing_key="rk-1")
    with app.app_context():
        add_incident()
        rid = add_row("pagerduty", payload={"event_action": "trigger", "dedup_key": "aiops-INC-1"})
        assert deliver_due(settings_of(app), now=T0) == 1
        sent = receiver.requests[0]
        assert sent.path == "/v2/enqueue" and sent.method == "POST"
        assert sent.json == {"event_action": "trigger", "dedup_key": "aiops-INC-1", "routing_key": "rk-1"}
        assert sent.headers["user-agent"] == "aiops-notifier"
        assert sent.headers["content-type"] == "application/json"
        done = row(rid)
        assert (done.status, done.attempts, done.last_status, done.delivered_at) == ("delivered", 1, 202, T0)
        assert done.lease_until is None and "routing_key" not in done.payload
        entry = timeline()[-1]
        assert entry["event"] == "notified" and entry["by"] == "pagerduty"
        assert entry["detail"] == "pagerduty trigger delivered (HTTP 202)"
        assert (channel("pagerduty").delivered, channel("pagerduty").attempts) == (1, 1)
        assert deliver_due(settings_of(app), now=T0 + 600) == 0
    assert receiver.count == 1


def test_retries_until_the_receiver_recovers(app, receiver):
    receiver.script(500, 503, Reply(429, headers={"Retry-After": "1"}), 202)
    reconfigure(app, webhook_url=receiver.url("/hook"))
    with app.app_context():
        add_incident()
        rid = add_row("webhook")
        now = T0
        for expected_attempts in (1, 2, 3):
            assert deliver_due(settings_of(app), now=now) == 1
            pending = row(rid)
            assert (pending.status, pending.attempts) == ("pending", expected_attempts)
            assert pending.next_attempt_at > now
            assert deliver_due(settings_of(app), now=pending.next_attempt_at - 0.001) == 0  # not due yet
            now = pending.next_attempt_at
        assert deliver_due(settings_of(app), now=now) == 1
        done = row(rid)
        assert (done.status, done.attempts, done.last_status, done.last_error) == ("delivered", 4, 202, None)
        notified = [e for e in timeline() if e["event"] == "notified"]
        assert [e["detail"] for e in notified] == ["webhook trigger delivered (HTTP 202) after 4 attempts"]
        assert channel("webhook").consecutive_failures == 0
        assert deliver_due(settings_of(app), now=now + 3600) == 0
    assert [r.status for r in receiver.requests] == [500, 503, 429, 202]
    assert {r.json["dedup_key"] for r in receiver.requests} == {"aiops-INC-1"}
    assert len({r.headers["x-aiops-notification-id"] for r in receiver.requests}) == 1


def test_retry_after_is_honoured(app, receiver):
    receiver.script(Reply(503, body="maintenance", headers={"Retry-After": "120"}),
                    Reply(429, headers={"Retry-After": formatdate(T0 + 1000, usegmt=True)}))
    reconfigure(app, webhook_url=receiver.url("/hook"), notify_backoff=0.5)
    with app.app_context():
        rid = add_row("webhook")
        deliver_due(settings_of(app), now=T0)
        first = row(rid)
        assert first.next_attempt_at >= T0 + 120 and first.last_error == "maintenance"
        now = first.next_attempt_at
        deliver_due(settings_of(app), now=now)
        assert row(rid).next_attempt_at >= T0 + 1000


def test_400_fails_at_once_with_the_response_recorded(app, receiver):
    body = "invalid event: " + "x" * 2000
    receiver.script(Reply(400, body=body))
    reconfigure(app, webhook_url=receiver.url("/hook"))
    with app.app_context():
        add_incident()
        rid = add_row("webhook")
        assert deliver_due(settings_of(app), now=T0) == 1
        failed = row(rid)
        assert (failed.status, failed.attempts, failed.last_status) == ("failed", 1, 400)
        assert failed.last_error.startswith("invalid event: xxx") and 900 <= len(failed.last_error) <= 1000
        entry = timeline()[-1]
        assert (entry["event"], entry["by"]) == ("notify-failed", "webhook")
        assert "HTTP 400" in entry["detail"]
        state = channel("webhook")
        assert (state.failed, state.consecutive_failures, state.open_until) == (1, 0, None)
        assert deliver_due(settings_of(app), now=T0 + 3600) == 0
    assert receiver.count == 1


def test_breaker_opens_skips_probes_once_and_closes(app, receiver):
    receiver.script(default=Reply(503, body="down"))
    reconfigure(app, webhook_url=receiver.url("/hook"), breaker_threshold=3,
                      breaker_cooldown=60.0, notify_backoff=1.0, notify_backoff_max=1.0)
    with app.app_context():
        ids = [add_row("webhook", incident_id=f"INC-{i}", at=T0 + i * 0.001) for i in range(6)]
        # Three failures open it; the other rows are not attempted in this call.
        assert deliver_due(settings_of(app), now=T0 + 1) == 3
        state = channel("webhook")
        assert (state.consecutive_failures, state.open_until) == (3, T0 + 61)
        assert stats(settings_of(app), now=T0 + 2)["webhook"]["breaker"] == "open"
        assert [row(i).attempts for i in ids] == [1, 1, 1, 0, 0, 0]
        # Open: nothing goes, nothing is counted, everything stays pending.
        assert deliver_due(settings_of(app), now=T0 + 30) == 0
        assert receiver.count == 3
        assert {row(i).status for i in ids} == {"pending"}
        # Half-open: one probe per call; it fails, so the breaker opens again.
        assert stats(settings_of(app), now=T0 + 62)["webhook"]["breaker"] == "half-open"
        assert deliver_due(settings_of(app), now=T0 + 62) == 1
        assert channel("webhook").open_until == T0 + 122
        assert deliver_due(settings_of(app), now=T0 + 100) == 0
        # The next probe succeeds and closes it; the call after that sends the rest.
        receiver.script(default=202)
        assert deliver_due(settings_of(app), now=T0 + 123) == 1
        state = channel("webhook")
        assert (state.consecutive_failures, state.open_until) == (0, None)
        assert deliver_due(settings_of(app), now=T0 + 124) == 5
        assert {row(i).status for i in ids} == {"delivered"}
        summary = stats(settings_of(app), now=T0 + 124)["webhook"]
        assert (summary["breaker"], summary["delivered"], summary["pending"]) == ("closed", 6, 0)
    assert receiver.count == 3 + 1 + 1 + 5


def test_gives_up_after_max_attempts(app, receiver):
    receiver.script(default=Reply(502, body="bad gateway"))
    reconfigure(app, webhook_url=receiver.url("/hook"), notify_max_attempts=3)
    with app.app_context():
        add_incident()
        rid = add_row("webhook")
        drive(app, rid, T0, rounds=10)
        failed = row(rid)
        assert (failed.status, failed.attempts, failed.last_status) == ("failed", 3, 502)
        assert failed.last_error == "gave up after 3 attempts: HTTP 502: bad gateway"
        assert "gave up after 3 attempts" in timeline()[-1]["detail"]
        assert channel("webhook").failed == 1
    assert receiver.count == 3


def test_network_errors_are_retried_and_keep_the_url_out_of_errors(app):
    with Receiver() as gone:
        url = gone.url("/services/T0000/B0000/XXXXXXXXsecretpath")
    reconfigure(app, slack_webhook_url=url)  # nothing listens there any more
    with app.app_context():
        rid = add_row("slack")
        assert deliver_due(settings_of(app), now=T0) == 1
        pending = row(rid)
        assert (pending.status, pending.attempts, pending.last_status) == ("pending", 1, None)
        assert "connection failed" in pending.last_error
        shown = (str(stats(settings_of(app))), str(notification_history({})[0]))
        for text in (pending.last_error, channel("slack").last_error, *shown):
            assert "secretpath" not in text and url.split("/services")[0] not in text


def test_timeouts_are_retried(app, receiver):
    receiver.script(Reply(200, delay=1.0))
    reconfigure(app, webhook_url=receiver.url("/hook"), notify_timeout=0.2)
    with app.app_context():
        rid = add_row("webhook")
        deliver_due(settings_of(app), now=T0)
        pending = row(rid)
        assert pending.status == "pending" and "timed out" in pending.last_error


def test_a_routing_key_stored_by_an_older_version_is_never_sent(app, receiver, client):
    # Rows queued before the key was kept out of payloads carry one: the configured key replaces it,
    # and with none configured the row fails unsent rather than page with the stored one.
    receiver.script(202)
    reconfigure(app, pagerduty_url=receiver.url("/v2/enqueue"), pagerduty_routing_key="rk-new")
    old = {"routing_key": "rk-old", "event_action": "trigger", "dedup_key": "aiops-INC-1"}
    with app.app_context():
        add_incident()
        add_row("pagerduty", payload=old)
        assert deliver_due(settings_of(app), now=T0) == 1
        assert receiver.requests[0].json == {**old, "routing_key": "rk-new"}
        reconfigure(app, pagerduty_routing_key=None)
        unkeyed = add_row("pagerduty", payload=old, at=T0 + 1)
        assert deliver_due(settings_of(app), now=T0 + 1) == 1
        assert row(unkeyed).status == "failed"
        assert row(unkeyed).last_error == "AIOPS_PAGERDUTY_ROUTING_KEY is not set"
    assert receiver.count == 1
    history = client.get("/aiops/notifications").get_data(as_text=True)
    assert "rk-old" not in history and "rk-new" not in history


def test_a_channel_no_longer_configured_fails_with_a_clear_message(app, receiver):
    with app.app_context():
        add_incident()
        rid = add_row("slack")
        pd = add_row("pagerduty")
        assert deliver_due(settings_of(app), now=T0) == 2
        assert (row(rid).status, row(rid).last_error) == ("failed", "AIOPS_SLACK_WEBHOOK_URL is not set")
        assert (row(pd).status, row(pd).last_error) == ("failed", "AIOPS_PAGERDUTY_ROUTING_KEY is not set")
        assert row(rid).attempts == 0
        assert any("not sent: AIOPS_SLACK_WEBHOOK_URL is not set" in e["detail"] for e in timeline())
        assert stats(settings_of(app))["slack"]["configured"] is False
        reconfigure(app, webhook_url="hooks.example.com/T0/secret-token")  # no scheme
        bad = add_row("webhook", at=T0 + 1)
        assert deliver_due(settings_of(app), now=T0 + 1) == 1
        assert (row(bad).status, row(bad).last_error) == ("failed", "AIOPS_WEBHOOK_URL is not an http(s) URL")
        # Set is configured (rows are queued, the delivery job runs): a bad URL fails each row visibly.
        assert stats(settings_of(app))["webhook"]["configured"] is True
    assert receiver.count == 0


def test_remediation_hook_runs_with_the_token(app, receiver):
    receiver.script(Reply(200, body="restarted payment"), Reply(404, body="no such hook"))
    reconfigure(app, remediation_latency_url=receiver.url("/latency"),
                      remediation_errors_url=receiver.url("/errors"), remediation_token="tok")
    with app.app_context():
        add_incident(incident_id="INC-1")
        add_incident(incident_id="INC-2")
        ok = add_row("remediation", "INC-1", "remediate", {"kind": "latency", "incident": {"id": "INC-1"}})
        bad = add_row("remediation", "INC-2", "remediate", {"kind": "errors", "incident": {"id": "INC-2"}},
                      at=T0 + 1)
        assert deliver_due(settings_of(app), now=T0 + 2) == 2
        assert [r.path for r in receiver.requests] == ["/latency", "/errors"]
        assert {r.headers["authorization"] for r in receiver.requests} == {"Bearer tok"}
        assert receiver.requests[0].json == {"kind": "latency", "incident": {"id": "INC-1"}}
        assert row(ok).status == "delivered" and row(bad).status == "failed"
        ran = db.session.get(Incident, "INC-1")
        assert (ran.remediation, ran.remediation_at) == ("ran", T0 + 2)
        assert ran.timeline[-1]["event"] == "remediation"
        assert ran.timeline[-1]["detail"] == "POST hook for latency answered 200: restarted payment"
        failed = db.session.get(Incident, "INC-2")
        assert failed.remediation == "failed"
        assert failed.timeline[-1]["event"] == "remediation" and "404" in failed.timeline[-1]["detail"]


def test_remediation_without_a_hook_for_its_kind_fails(app, receiver):
    reconfigure(app, remediation_latency_url=receiver.url("/latency"))
    with app.app_context():
        add_incident()
        rid = add_row("remediation", payload={"kind": "timeout", "incident": {}})
        deliver_due(settings_of(app), now=T0)
        assert row(rid).last_error == "AIOPS_REMEDIATION_TIMEOUT_URL is not set"
        assert db.session.get(Incident, "INC-1").remediation == "failed"
    assert receiver.count == 0


def test_sends_outside_transactions_and_superseded_rows_still_record_delivery(app, receiver, monkeypatch):
    real_send = sender.send
    seen = []

    def superseding_send(*args, **kwargs):
        seen.append(db.session().in_transaction())
        begin_write()  # the enqueuer replaces the row while it is on the wire
        db.session.execute(update(Notification).values(status="superseded"))
        db.session.commit()
        return real_send(*args, **kwargs)

    monkeypatch.setattr(sender, "send", superseding_send)
    receiver.script(202, 500)
    reconfigure(app, webhook_url=receiver.url("/hook"))
    with app.app_context():
        add_incident()
        sent = add_row("webhook")
        assert deliver_due(settings_of(app), now=T0) == 1
        assert (row(sent).status, row(sent).lease_until) == ("delivered", None)
        assert timeline()[-1]["event"] == "notified"
        failing = add_row("webhook", at=T0 + 1)
        assert deliver_due(settings_of(app), now=T0 + 1) == 1
        left = row(failing)
        assert (left.status, left.lease_until, left.last_status) == ("superseded", None, 500)
    assert seen == [False, False]


def test_a_newer_row_waits_while_an_older_one_for_the_incident_is_in_flight(app, receiver):
    reconfigure(app, webhook_url=receiver.url("/hook"))
    with app.app_context():
        older = add_row("webhook", event="trigger")
        newer = add_row("webhook", event="resolve", at=T0 + 1)
        begin_write()  # another process is sending the trigger (and may die doing so)
        db.session.execute(update(Notification).where(Notification.id == older)
                           .values(lease_until=T0 + 60, lease_owner="elsewhere:1"))
        db.session.commit()
        assert deliver_due(settings_of(app), now=T0 + 2) == 0
        assert row(newer).status == "pending"
        # The lease runs out: the trigger is resent first, then the resolve.
        assert deliver_due(settings_of(app), now=T0 + 61) == 2
    assert [r.json["event"] for r in receiver.requests] == ["trigger", "resolve"]


def test_concurrent_callers_send_each_row_once(app, receiver):
    receiver.script(default=Reply(202, delay=0.005))
    reconfigure(app, webhook_url=receiver.url("/hook"))
    with app.app_context():
        ids = [add_row("webhook", incident_id=f"INC-{i}", at=T0 + i * 0.001) for i in range(20)]
    start = threading.Barrier(3)
    taken, errors = [], []

    def worker():
        with app.app_context():
            try:
                start.wait()
                taken.append(deliver_due(settings_of(app), now=T0 + 1))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(taken) == 20
    keys = [r.json["dedup_key"] for r in receiver.requests]
    assert sorted(keys) == sorted(f"aiops-INC-{i}" for i in range(20))
    with app.app_context():
        assert {row(i).status for i in ids} == {"delivered"}
        assert channel("webhook").delivered == 20


def test_stats_and_history(app, receiver):
    receiver.script(202, Reply(400, body="nope"))
    reconfigure(app, webhook_url=receiver.url("/hook"))
    with app.app_context():
        first = add_row("webhook", incident_id="INC-1")
        second = add_row("webhook", incident_id="INC-2", at=T0 + 1)
        add_row("slack", incident_id="INC-1", at=T0 + 2)
        begin_write()
        db.session.add(Notification(
            channel="webhook", incident_id="INC-3", event="trigger", dedup_key="k", severity="low",
            payload={}, status="superseded", attempts=0, created_at=T0 + 3, next_attempt_at=T0 + 3))
        db.session.commit()
        deliver_due(settings_of(app), now=T0 + 1)  # the slack row is not due yet
        summary = stats(settings_of(app), now=T0 + 1)
        assert set(summary) >= {"webhook", "slack", "pagerduty", "remediation"}
        web = summary["webhook"]
        assert {k: web[k] for k in ("configured", "pending", "delivered", "failed", "superseded")} == {
            "configured": True, "pending": 0, "delivered": 1, "failed": 1, "superseded": 1}
        assert (web["breaker"], web["consecutive_failures"], web["open_until"]) == ("closed", 0, None)
        assert web["last_error"] == "HTTP 400: nope" and web["last_attempt_at"].endswith("Z")
        assert (summary["slack"]["configured"], summary["slack"]["pending"]) == (False, 1)
        assert summary["pagerduty"]["breaker"] == "closed"
        newest_first = [n["id"] for n in notification_history({})[0]]
        assert newest_first[-2:] == [second, first] and len(newest_first) == 4
        assert [n["id"] for n in notification_history({"incident": "INC-1",
                "channel": "webhook"})[0]] == [first]
        assert [n["status"] for n in notification_history({"status": "failed"})[0]] == ["failed"]
        assert notification_history({"limit": "1"})[0][0]["channel"] == "webhook"


def test_channel_rows_are_created_once(app):
    with app.app_context():
        store.ensure_channels(["webhook", "slack"])
        store.ensure_channels(["webhook", "pagerduty"])  # an existing row is left alone
        names = db.session.scalars(select(ChannelState.name).order_by(ChannelState.name)).all()
        assert names == ["pagerduty", "slack", "webhook"]


def test_worker_job(app, receiver):
    from aiops.jobs import worker

    reconfigure(app, webhook_url=receiver.url("/hook"), notify_poll=0.5)
    job = next(j for j in worker.jobs(settings_of(app)) if j.id == outbox.JOB_ID)
    assert job.seconds == 0.5
    assert outbox.JOB_ID not in {j.id for j in worker.jobs(Settings(notifications=False))}  # no job
    with app.app_context():
        add_row("webhook", at=0.0)  # long due by the wall clock
    assert outbox.tick(app) == 1
    assert receiver.count == 1
