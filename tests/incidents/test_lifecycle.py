"""Incident lifecycle: persistence before notifying, reopen within the cooldown,
linked recurrence after it, escalation, quiet resolve, and remediation checks.

Drives ``apply_groups``/``resolve_quiet`` the way a cycle does (one write
transaction per cycle) on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from aiops.incidents.errors import InvalidTransition
from aiops.incidents.lifecycle import transition
from aiops.store.models import Incident
from telemetry.db import begin_write, db
from tests.support.factories import error, group, latency, payment_slow
from tests.support.incident_cycles import POLICY, cycle


def events(changes):
    return [(i.id, e) for i, e in changes.notify]


def all_incidents():
    db.session.expire_all()
    return list(db.session.scalars(select(Incident).order_by(Incident.first_detected)))


def test_an_anomaly_notifies_only_once_it_persisted(app):
    with app.app_context():
        first = cycle(1000.0, payment_slow())
        [inc] = first.opened
        assert first.notify == [] and not inc.to_dict()["confirmed"]
        second = cycle(1030.0, payment_slow())
        assert events(second) == [(inc.id, "trigger")]
        assert [i.id for i in second.remediate] == [inc.id]
        third = cycle(1060.0, payment_slow())
        assert third.notify == []  # once per incident, not per cycle
        [stored] = all_incidents()
        assert stored.seen_cycles == 3 and stored.confirmed_at == 1030.0
        assert [e["event"] for e in stored.timeline] == ["detected", "confirmed"]


def test_a_blip_resolves_quietly_without_any_notification(app):
    with app.app_context():
        cycle(1000.0, payment_slow())
        quiet = [cycle(1000.0 + 30 * k) for k in (1, 2)]
        assert [i.status for i in quiet[-1].resolved] == ["resolved"]
        assert all(c.notify == [] for c in quiet)


def test_a_flapping_endpoint_is_one_incident_with_one_trigger(app):
    """On, off, on, off ...: never quiet long enough to resolve, so one incident, one trigger."""
    with app.app_context():
        notified = []
        for k in range(12):
            groups = [payment_slow()] if k % 2 == 0 else []
            notified += events(cycle(1000.0 + 30 * k, *groups))
        [inc] = all_incidents()
        assert notified == [(inc.id, "trigger")]
        assert inc.status == "open" and inc.seen_cycles == 6


def test_recurrence_within_the_cooldown_reopens_and_must_persist_again(app):
    with app.app_context():
        cycle(1000.0, payment_slow())
        cycle(1030.0, payment_slow())  # confirmed, trigger
        resolved = cycle(1060.0).resolved + cycle(1090.0).resolved
        [inc] = resolved
        assert inc.status == "resolved"
        again = cycle(1300.0, payment_slow())  # 210 s later: inside the 600 s cooldown
        assert [i.id for i in again.reopened] == [inc.id] and again.opened == []
        assert again.notify == []  # the recurrence must persist before it pages again
        assert events(cycle(1330.0, payment_slow())) == [(inc.id, "trigger")]
        [stored] = all_incidents()
        assert stored.reopen_count == 1 and stored.status == "open" and stored.resolved_at is None
        assert "reopened" in [e["event"] for e in stored.timeline]


def test_recurrence_after_the_cooldown_opens_a_linked_incident(app):
    with app.app_context():
        [old] = cycle(1000.0, payment_slow()).opened
        cycle(1030.0)
        cycle(1060.0)  # resolved at 1060
        new = cycle(1060.0 + 601, payment_slow())
        [inc] = new.opened
        assert inc.id != old.id and inc.related_to == old.id
        assert f"recurrence of {old.id}" in inc.timeline[0]["detail"]


def test_resolve_notifies_only_what_was_notified(app):
    with app.app_context():
        cycle(1000.0, payment_slow())
        cycle(1030.0, payment_slow())  # confirmed
        cycle(1060.0)
        done = cycle(1090.0)
        assert [e for _, e in events(done)] == ["resolve"]


def test_recurring_incidents_escalate(app):
    with app.app_context():
        now = 1000.0
        ids = set()
        for _ in range(3):
            for _ in range(2):
                ids |= {i.id for i in cycle(now, payment_slow()).touched}
                now += 30
            cycle(now)
            cycle(now + 30)
            now += 90
        [inc] = all_incidents()
        assert len(ids) == 1 and inc.reopen_count == 2
        assert inc.severity == "critical"  # high (45x latency) + one step for 2 recurrences
        escalated = [e for e in inc.timeline if e["event"] == "escalated"]
        assert escalated and "recurred 2 times" in escalated[-1]["detail"]


def test_an_incident_that_lasts_too_long_escalates_and_tells_the_channels(app):
    policy = replace(POLICY, escalate_after=120.0)
    with app.app_context():
        mild = group("payment", latency("payment", 70.0, 20.0))  # 3.5x: medium
        [inc] = cycle(1000.0, mild, policy=policy).opened
        assert inc.severity == "medium"
        cycle(1030.0, mild, policy=policy)  # confirmed
        late = cycle(1150.0, mild, policy=policy)  # open 150 s > 120 s
        assert events(late) == [(inc.id, "update")]
        assert all_incidents()[0].severity == "high"


def test_severity_counts_the_share_of_traffic(app):
    with app.app_context():
        [busy] = cycle(1000.0, group("payment", error("payment", 0.3)), total_requests=20).opened
        [rare] = cycle(1000.0, group("inventory", error("inventory", 0.3)), total_requests=1000).opened
        assert busy.severity == "high" and rare.severity == "medium"  # 10 of 1000 requests: a step less


def remediated_at(at: float) -> None:
    """A confirmed payment incident whose hook ran at ``at`` (as the delivery worker records it)."""
    cycle(1000.0, payment_slow())
    [inc] = cycle(1030.0, payment_slow()).remediate
    db.session.rollback()
    begin_write()
    stored = db.session.get(Incident, inc.id)
    stored.remediation, stored.remediation_at = "ran", at
    db.session.commit()


def test_remediation_is_judged_by_the_next_full_cycle(app):
    with app.app_context():
        remediated_at(1031.0)
        cycle(1060.0)  # only 29 s after the hook: its window still held faulty spans
        assert all_incidents()[0].remediation == "ran"
        cycle(1090.0)
        [stored] = all_incidents()
        assert stored.remediation == "cleared"
        assert "the anomaly cleared after the remediation hook ran" in [e["detail"] for e in stored.timeline]


def test_remediation_that_did_not_help_is_recorded(app):
    with app.app_context():
        remediated_at(1031.0)
        cycle(1070.0, payment_slow())
        assert all_incidents()[0].remediation == "persisting"


def test_hand_transitions_the_state_refuses_raise_the_rules_own_error():
    """A rule's refusal is the incidents package's error, with no HTTP in it (the web edge makes it a 409)."""
    for status, action, why in (("resolved", "acknowledge", "already resolved"),
                                ("resolved", "resolve", "already resolved"),
                                ("acknowledged", "acknowledge", "already acknowledged")):
        incident = SimpleNamespace(id="INC-1-1", status=status)
        with pytest.raises(InvalidTransition, match=f"INC-1-1 is {why}"):
            transition(incident, action, 1.0, "alice", "")
        assert incident.status == status


def test_a_starved_service_is_one_incident_that_takes_in_its_endpoints_cycle_after_cycle(app):
    """Blamed whole, a service is one incident: a next cycle's group rooted at one of its endpoints
    (a starved process shows on one endpoint or another) joins it; one that comes after the
    whole-service incident went quiet for a cycle is a fault of its own, and so is an endpoint
    incident already open when the whole service is blamed (a load spike must not swallow it)."""

    def open_roots():
        live = db.session.query(Incident).filter(Incident.status != "resolved")
        return sorted(i.root_endpoint for i in live)

    whole = lambda: group("", latency("inventory", 90.0, 15.0), latency("checkout", 95.0, 20.0))  # noqa: E731
    with app.app_context():
        cycle(1000.0, whole())
        # Seen last cycle, though the starved host ran that cycle 45 s late: the same service.
        cycle(1075.0, payment_slow())
        [starved] = db.session.query(Incident).all()
        assert starved.root_endpoint == "" and starved.title.startswith("shop (whole service)")
        assert starved.to_dict()["root_cause"]["endpoint"] is None
        cycle(1105.0)
        stock = lambda: group("stock", latency("stock", 400.0, 15.0))  # noqa: E731
        cycle(1135.0, stock())  # the whole service was quiet a cycle: its own
        assert "stock" in open_roots()
        cycle(1165.0, whole(), stock())  # both at once: both kept
        assert open_roots() == ["", "stock"]


def test_the_first_signs_of_a_starved_service_fold_into_its_whole_service_incident(app):
    """A starved service shows on one endpoint before the evidence blames all of it: that young,
    unconfirmed endpoint incident closes into the whole-service one, which takes its endpoints and
    is the one that notifies. A confirmed endpoint incident (people were told) stays its own."""
    whole = lambda *more: group("", latency("inventory", 90.0, 15.0), latency("checkout", 95.0, 20.0),  # noqa: E731
                                *more)
    with app.app_context():
        told = [cycle(1000.0 + 30 * k, payment_slow()) for k in range(2)][0].opened[0]  # confirmed
        cycle(1060.0, whole(latency("payment", 900.0, 20.0)))
        assert db.session.get(Incident, told.id).status == "open"
        cycle(1090.0)
        cycle(1120.0)  # all quiet: resolved

        [first_sign] = cycle(5000.0, group("inventory", latency("inventory", 80.0, 15.0))).opened
        folded = cycle(5030.0, whole())
        [starved] = folded.opened
        assert [i.id for i in folded.resolved] == [first_sign.id] and folded.notify == []
        assert first_sign.status == "resolved" and first_sign.timeline[-1]["event"] == "merged"
        assert starved.id in first_sign.timeline[-1]["detail"] and "inventory" in starved.affected
        assert [i.id for i in all_incidents() if i.status != "resolved"] == [starved.id]
        assert events(cycle(5060.0, whole())) == [(starved.id, "trigger")]


def test_an_incident_from_log_lines_alone_narrows_to_the_endpoint_the_traces_blame(app):
    with app.app_context():
        cycle(1000.0, group("", latency("inventory", 90.0, 15.0), latency("payment", 95.0, 20.0)))
        cycle(1030.0)
        cycle(1060.0)  # quiet: resolved

        logs = group("", latency("checkout", 0.0, 0.0))
        logs.anomalies[0].message = "Log pattern change: new ERROR template"
        cycle(5000.0, logs)  # a new fault, seen in the logs first
        logged = db.session.query(Incident).filter(Incident.status != "resolved").one()
        assert logged.root_endpoint == ""
        cycle(5030.0, group("inventory", latency("inventory", 900.0, 15.0)))
        db.session.refresh(logged)
        assert logged.root_endpoint == "inventory" and "narrowed" in [e["event"] for e in logged.timeline]
