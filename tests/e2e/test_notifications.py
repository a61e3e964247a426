"""Notifications end to end: a real gunicorn, real faults, real receivers on loopback.

The receivers (tests/support/receivers.py) record what they get and fail on demand.
Detection runs when the test asks (``POST /aiops/analyze``); the outbox is
delivered by the servers' own background job, so the tests wait for the
receivers to hear about it, never for a fixed time.
"""

from __future__ import annotations

import collections
import contextlib

import pytest

from tests.e2e import helpers as h
from tests.e2e.server import GunicornServer, WorkerProcess
from tests.support.receivers import Receiver, Reply

pytestmark = pytest.mark.e2e

ROUTING_KEY = "e2e-routing-key"


def notify_env(db_url, pagerduty: Receiver, webhook: Receiver | None = None, **overrides) -> dict:
    env = h.shop_env(
        db_url,
        AIOPS_PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
        AIOPS_PAGERDUTY_URL=pagerduty.url("/v2/enqueue"),
        AIOPS_NOTIFY_AFTER_CYCLES="2",
        AIOPS_RESOLVE_AFTER_CYCLES="2",
        AIOPS_NOTIFY_POLL="0.2",
        AIOPS_NOTIFY_BACKOFF="0.2",
        AIOPS_NOTIFY_BACKOFF_MAX="1",
        AIOPS_PUBLIC_URL="http://aiops.example",
    )
    if webhook is not None:
        env["AIOPS_WEBHOOK_URL"] = webhook.url("/hook")
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def events(receiver: Receiver, accepted_only: bool = False) -> list[tuple[str, str]]:
    """(event_action, dedup_key) of each PagerDuty request, in arrival order."""
    return [(r.json["event_action"], r.json["dedup_key"]) for r in receiver.requests
            if not accepted_only or 200 <= r.status < 300]


def delivered_row(server, incident_id: str) -> dict:
    """The incident's one outbox row, once its sender has recorded it delivered."""
    rows: list[dict] = []

    def delivered() -> bool:
        rows[:] = server.get("/aiops/notifications", params={"incident": incident_id}).json()["notifications"]
        return len(rows) == 1 and rows[0]["status"] == "delivered"

    h.wait_for(delivered, "the delivery to be recorded")
    return rows[0]


def faulty_cycle(server, analyze: bool = True) -> dict | None:
    assert h.checkouts(server.url, 8, threads=8) == {200: 8}
    return h.analyze(server) if analyze else None


def test_one_trigger_per_incident_then_acknowledge_and_resolve_with_the_same_dedup_key(tmp_path, db_url):
    with Receiver(default=Reply(202, '{"status": "success"}')) as pagerduty, Receiver() as webhook:
        with h.running(tmp_path, notify_env(db_url, pagerduty, webhook)) as server:
            h.warm_up(server)
            h.inject(server, "delay", endpoint="payment", duration=1500)
            first = faulty_cycle(server)
            [iid] = first["incidents_opened"]
            assert first["notifications_queued"] == 0  # seen once: not yet confirmed
            second = faulty_cycle(server)
            assert second["incidents_updated"] == [iid] and second["notifications_queued"] == 2
            for _ in range(2):
                assert faulty_cycle(server)["notifications_queued"] == 0  # one trigger, not one per cycle
            h.wait_for(lambda: pagerduty.count >= 1 and webhook.count >= 1, "the trigger")

            r = server.post(f"/aiops/incidents/{iid}/acknowledge", json={"by": "alice", "comment": "on it"})
            assert r.status_code == 200, r.text
            h.wait_for(lambda: pagerduty.count >= 2, "the acknowledge")

            server.post("/simulate/clear")
            for _ in range(2):  # quiet cycles: resolves itself
                summary = faulty_cycle(server)
            assert summary["incidents_resolved"] == [iid], summary
            h.wait_for(lambda: pagerduty.count >= 3 and webhook.count >= 3, "the resolve")

            def recorded() -> bool:  # receivers hear a message before its sender records it
                stats = server.get("/aiops/notifications").json()["channels"]
                return stats["pagerduty"]["delivered"] == 3 and stats["webhook"]["delivered"] == 3

            h.wait_for(recorded, "the deliveries to be recorded")

            assert events(pagerduty) == [("trigger", iid), ("acknowledge", iid), ("resolve", iid)]
            trigger = pagerduty.requests[0].json
            assert trigger["routing_key"] == ROUTING_KEY
            assert trigger["payload"]["severity"] in ("error", "critical")
            assert trigger["payload"]["source"] == "shop" and trigger["payload"]["component"] == "payment"
            assert trigger["links"][0]["href"] == f"http://aiops.example/incidents/{iid}"
            assert [r.json["event"] for r in webhook.requests] == ["trigger", "acknowledge", "resolve"]
            assert webhook.requests[1].json["actor"] == "alice"
            assert {r.json["dedup_key"] for r in webhook.requests} == {iid}

            incident = server.get(f"/aiops/incidents/{iid}").json()
            notified = [e for e in incident["timeline"] if e["event"] == "notified"]
            assert {e["by"] for e in notified} == {"pagerduty", "webhook"} and len(notified) == 6
            assert incident["report"]["kind"] == "latency" and incident["report"]["recommendations"]

            body = server.get("/aiops/notifications").json()
            assert body["channels"]["pagerduty"]["delivered"] == 3
            assert body["channels"]["webhook"]["delivered"] == 3
            assert body["channels"]["pagerduty"]["breaker"] == "closed"
            assert "slack" in body["channels"] and not body["channels"]["slack"]["configured"]
            assert ROUTING_KEY not in server.get("/aiops/notifications").text


def test_a_receiver_that_fails_three_times_then_recovers_gets_it_once(tmp_path):
    script = [500, 503, Reply(429, headers={"Retry-After": "1"})]
    with Receiver(script, default=202) as pagerduty:
        env = notify_env(h.sqlite_url(tmp_path), pagerduty, AIOPS_NOTIFY_AFTER_CYCLES="1")
        with h.running(tmp_path, env) as server:
            h.warm_up(server)
            h.inject(server, "error", endpoint="payment", rate=1.0)
            assert h.checkouts(server.url, 8, threads=8) == {502: 8}
            [iid] = h.analyze(server)["incidents_opened"]
            h.wait_for(lambda: any(r.status == 202 for r in pagerduty.requests), "a delivered trigger")

            statuses = [r.status for r in pagerduty.requests]
            assert statuses == [500, 503, 429, 202]
            assert set(events(pagerduty)) == {("trigger", iid)}  # the same message, retried
            assert events(pagerduty, accepted_only=True) == [("trigger", iid)]
            retry_after = pagerduty.requests[3].at - pagerduty.requests[2].at
            assert retry_after >= 1.0  # honoured Retry-After: 1

            row = delivered_row(server, iid)  # the receiver hears it before the sender records it
            assert (row["attempts"], row["last_status"]) == (4, 202)


def test_a_restart_in_the_middle_of_retries_loses_nothing(tmp_path, db_url):
    with Receiver(default=503) as pagerduty:
        env = notify_env(db_url, pagerduty, AIOPS_NOTIFY_AFTER_CYCLES="1", AIOPS_NOTIFY_BACKOFF="0.3",
                         AIOPS_BREAKER_THRESHOLD="1000")  # this test is about the outbox, not the breaker
        with h.running(tmp_path, env, name="first") as server:
            h.warm_up(server)
            h.inject(server, "error", endpoint="inventory", rate=1.0)
            assert h.checkouts(server.url, 8, threads=8) == {502: 8}
            [iid] = h.analyze(server)["incidents_opened"]
            h.wait_for(lambda: pagerduty.count >= 2, "failing attempts")
            server.proc.kill()  # SIGKILL: no chance to finish anything
            server.proc.wait()
        assert all(r.status == 503 for r in pagerduty.requests)

        pagerduty.script(default=202)  # the receiver recovers while we are down
        with h.running(tmp_path, env, name="second") as server:
            h.wait_for(lambda: any(r.status == 202 for r in pagerduty.requests), "delivery after restart")
            assert events(pagerduty, accepted_only=True) == [("trigger", iid)]
            row = delivered_row(server, iid)
            # A send cut off by the kill reached the receiver but was never recorded: at least once.
            assert 3 <= row["attempts"] <= pagerduty.count


def test_a_flapping_fault_is_one_incident_and_one_trigger(tmp_path):
    with Receiver(default=202) as pagerduty:
        env = notify_env(h.sqlite_url(tmp_path), pagerduty, AIOPS_RESOLVE_AFTER_CYCLES="3")
        with h.running(tmp_path, env) as server:
            h.warm_up(server)
            opened = []
            for _ in range(3):  # fault on for a cycle, off for a cycle
                h.inject(server, "delay", endpoint="payment", duration=1500)
                opened += faulty_cycle(server)["incidents_opened"]
                server.post("/simulate/clear")
                opened += faulty_cycle(server)["incidents_opened"]
            data = h.incidents(server)
            assert len(opened) == 1 and len(data["active_incidents"]) == 1, h.describe(server)
            assert data["resolved_incidents"] == []
            [iid] = opened
            h.wait_for(lambda: pagerduty.count >= 1, "the trigger")
            assert server.get(f"/aiops/incidents/{iid}").json()["seen_cycles"] == 3
            queued = server.get("/aiops/notifications").json()["notifications"]
            assert collections.Counter(n["event"] for n in queued) == {"trigger": 1}
            assert events(pagerduty) == [("trigger", iid)]


def test_the_demo_remediation_hook_clears_the_fault_and_the_next_cycle_confirms_it(tmp_path):
    env = h.shop_env(h.sqlite_url(tmp_path), AIOPS_NOTIFY_AFTER_CYCLES="2", AIOPS_NOTIFY_POLL="0.2",
                     AIOPS_DETECTION_INTERVAL="0.2")  # a remediation is judged 0.2 s after it ran
    server = GunicornServer(env, workers=4, threads=h.THREADS, log_path=tmp_path / "server.log")
    server.env["AIOPS_REMEDIATION_LATENCY_URL"] = server.url + "/simulate/remediate"
    with server, contextlib.closing(WorkerProcess(server.env, tmp_path / "server.log").start()) as worker:
        assert worker.pid  # the worker delivers the hook (web workers only serve)
        h.warm_up(server)
        h.inject(server, "delay", endpoint="payment", duration=1500)
        [iid] = faulty_cycle(server)["incidents_opened"]
        faulty_cycle(server)  # confirmed: the hook is queued

        def remediated():
            return server.get(f"/aiops/incidents/{iid}").json()["remediation"] == "ran"

        h.wait_for(remediated, "the remediation hook")
        assert server.get("/simulate/faults").json()["faults"] == []
        timeline = server.get(f"/aiops/incidents/{iid}").json()["timeline"]
        assert any(e["event"] == "remediation" and "answered 200" in e["detail"] for e in timeline), timeline

        summary = faulty_cycle(server)
        assert summary["incidents_updated"] == [], summary
        incident = server.get(f"/aiops/incidents/{iid}").json()
        assert incident["remediation"] == "cleared", incident["timeline"]
