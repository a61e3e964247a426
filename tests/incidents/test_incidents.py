"""Incidents (aiops.incidents.lifecycle): one per root cause, joined, resolved, serialised.

Runs on SQLite and PostgreSQL (the ``app`` fixture): the JSON columns and the
dedup queries must behave the same on both.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from aiops.detection.rules import Anomaly
from aiops.incidents.lifecycle import Changes, apply_groups, resolve_quiet
from aiops.incidents.rules import Policy, severity
from aiops.jobs.cycle import run_claimed
from aiops.rca.analysis import Group
from aiops.settings import Settings, reconfigure, settings_of
from aiops.store.models import AnomalyRecord, Incident
from telemetry.db import begin_write, db
from tests.support.factories import error, group, latency

WINDOW = 300.0
POLICY = Policy.from_settings(Settings(correlation_window=WINDOW))
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def apply(groups, now):
    """As a cycle does: one write transaction, committed."""
    db.session.rollback()
    begin_write()
    changes = apply_groups(groups, now, POLICY)
    db.session.commit()
    return changes.opened, changes.updated + changes.reopened


def resolve(now, after=3, touched=()):
    db.session.rollback()
    begin_write()
    changes = resolve_quiet(Changes(updated=list(touched)), now, replace(POLICY, resolve_after_cycles=after))
    db.session.commit()
    return changes.resolved


def incidents():
    db.session.expire_all()
    return list(db.session.scalars(select(Incident).order_by(Incident.first_detected)))


def test_same_root_twice_updates_one_incident(app):
    with app.app_context():
        opened, updated = apply([group("payment", latency("payment"), latency("checkout", 950, 60))],
                                now=1_000.0)
        assert len(opened) == 1 and updated == []
        first_id = opened[0].id
        opened, updated = apply([group("payment", latency("payment", 1200.0))], now=1_060.0)
        assert opened == [] and [i.id for i in updated] == [first_id]

        [inc] = incidents()
        assert inc.id == first_id and inc.status == "open"
        assert (inc.first_detected, inc.last_seen) == (1_000.0, 1_060.0)
        assert [(a.endpoint, a.observed, a.detected_at) for a in inc.anomalies] == [
            ("payment", 900.0, 1_000.0), ("checkout", 950.0, 1_000.0), ("payment", 1200.0, 1_060.0),
        ]
        assert inc.affected == ["payment", "checkout"]
        assert inc.correlated_failures == ["payment_latency", "checkout_latency"]
        assert db.session.scalar(select(func.count()).select_from(AnomalyRecord)) == 3


def test_a_new_kind_of_failure_on_the_same_root_is_added_not_duplicated(app):
    with app.app_context():
        apply([group("payment", latency("payment"))], now=1_000.0)
        apply([group("payment", error("payment"))], now=1_030.0)
        [inc] = incidents()
        assert inc.correlated_failures == ["payment_latency", "payment_error"]
        assert [e["event"] for e in inc.timeline][:2] == ["detected", "updated"]


def test_escalates_severity_but_never_lowers_it(app):
    with app.app_context():
        apply([group("payment", latency("payment", 90.0, 20.0))], now=1_000.0)  # 4.5x: medium
        assert incidents()[0].severity == "medium"
        apply([group("payment", error("payment", 1.0))], now=1_030.0)
        assert incidents()[0].severity == "critical"
        apply([group("payment", latency("payment", 90.0, 20.0))], now=1_060.0)
        assert incidents()[0].severity == "critical"


def test_group_rooted_at_an_affected_endpoint_joins_the_open_incident(app):
    """A late checkout trace whose RCA stops at checkout must not open a second incident."""
    with app.app_context():
        [inc], _ = apply([group("payment", latency("payment"), latency("checkout", 950, 60))], now=1_000.0)
        opened, updated = apply([group("checkout", latency("checkout", 980, 60))], now=1_030.0)
        assert opened == [] and [i.id for i in updated] == [inc.id]
        [only] = incidents()
        assert (only.root_service, only.root_endpoint) == ("shop", "payment")
        assert len(only.anomalies) == 3 and only.last_seen == 1_030.0
        # The candidates stay those of the real root.
        assert only.candidates[0]["endpoint"] == "payment"


def test_joining_in_the_same_cycle(app):
    """Two groups of one cycle, the second rooted at an endpoint the first affects: one incident."""
    with app.app_context():
        opened, updated = apply(
            [group("payment", latency("payment"), latency("checkout", 950, 60)),
             group("checkout", error("checkout", 0.3))],
            now=1_000.0,
        )
        assert len(opened) == 1 and updated == []
        assert len(incidents()) == 1


def test_affected_endpoint_outside_the_correlation_window_opens_a_new_incident(app):
    with app.app_context():
        apply([group("payment", latency("payment"), latency("checkout", 950, 60))], now=1_000.0)
        opened, _ = apply([group("checkout", error("checkout"))], now=1_000.0 + WINDOW + 1)
        assert len(opened) == 1
        assert [i.root_endpoint for i in incidents()] == ["payment", "checkout"]
        assert len({i.id for i in incidents()}) == 2


def test_different_roots_are_different_incidents(app):
    with app.app_context():
        opened, _ = apply([group("inventory", error("inventory")), group("payment", latency("payment"))],
                          now=1_000.0)
        assert sorted(i.root_endpoint for i in opened) == ["inventory", "payment"]
        assert len({i.id for i in opened}) == 2


def test_auto_resolves_after_clean_cycles_and_an_update_resets_the_count(app):
    with app.app_context():
        [inc], _ = apply([group("payment", latency("payment"))], now=1_000.0)
        assert resolve(1_030.0) == [] and resolve(1_060.0) == []
        apply([group("payment", latency("payment"))], now=1_090.0)  # seen again
        assert incidents()[0].clean_cycles == 0
        assert resolve(1_120.0) == [] and resolve(1_150.0) == []
        assert [i.id for i in resolve(1_180.0)] == [inc.id]
        [done] = incidents()
        assert done.status == "resolved" and done.resolved_at == 1_180.0
        assert done.timeline[-1]["event"] == "resolved"
        assert resolve(1_210.0) == []  # resolved incidents are left alone


def test_touched_incidents_are_not_counted_as_clean(app):
    with app.app_context():
        [inc], _ = apply([group("payment", latency("payment"))], now=1_000.0)
        for t in range(5):
            assert resolve(1_030.0 + t, after=1, touched=[inc]) == []
        assert incidents()[0].status == "open"


def test_a_resolved_root_that_fails_again_after_the_cooldown_opens_a_new_incident(app):
    with app.app_context():
        [first], _ = apply([group("payment", latency("payment"))], now=1_000.0)
        resolve(1_030.0, after=1)
        [second], _ = apply([group("payment", latency("payment"))], now=1_030.0 + POLICY.reopen_cooldown + 1)
        assert second.id != first.id and second.related_to == first.id
        assert [i.status for i in incidents()] == ["resolved", "open"]


def test_detection_cycles_resolve_after_configured_clean_cycles(app):
    """AIOPS_RESOLVE_AFTER_CYCLES is what the real cycle uses (here 2, not the default 3)."""
    reconfigure(app, resolve_after_cycles=2)
    with app.app_context():
        [inc], _ = apply([group("payment", latency("payment"))], now=1_000.0)
        first = run_claimed(settings_of(app), force=True)
        assert first["incidents_resolved"] == [] and first["spans"] == 0
        second = run_claimed(settings_of(app), force=True)
        assert second["incidents_resolved"] == [inc.id]
        assert incidents()[0].status == "resolved"


@pytest.mark.parametrize(
    ("anomalies", "affected", "expected"),
    [
        ([], 1, "low"),
        ([latency("payment", 70.0, 20.0)], 1, "medium"),  # 3.5x
        ([latency("payment", 100.0, 20.0)], 1, "high"),  # 5x
        ([error("payment", 0.3)], 1, "high"),
        ([error("payment", 0.5)], 1, "critical"),
        ([Anomaly("shop", "inventory", "timeout", 3.0, None, 0, "Timeout")], 1, "critical"),
        ([latency("payment", 70.0, 20.0), error("payment", 0.3)], 1, "high"),  # the worst counts
        ([latency("payment", 70.0, 20.0)], 3, "high"),  # spreading raises it a step
        ([error("payment", 0.3)], 2, "high"),
        ([error("payment", 0.9)], 4, "critical"),  # capped
    ],
)
def test_severity(anomalies, affected, expected):
    assert severity(anomalies, affected) == expected


def test_a_candidate_names_its_pod_only_where_the_evidence_points_at_one(app):
    with app.app_context():
        g = group("payment", latency("payment", 1250.0, 180.0))
        g.pods = {"shop": "shop-6c9f-2"}
        apply([g], now=1_737_369_015.0)
        [inc] = incidents()
        candidates = json.loads(json.dumps(inc.to_dict()))["root_cause_candidates"]
    assert {k: v for k, v in candidates[0].items() if k != "evidence"} == {
        "service": "shop", "endpoint": "payment", "score": 0.9, "pod": "shop-6c9f-2"}


def test_to_dict_matches_the_contract(app):
    with app.app_context():
        apply([group("payment", latency("payment", 1250.0, 180.0), latency("checkout", 1300.0, 200.0))],
              now=1_737_369_015.0)
        apply([group("payment", latency("payment", 1260.0, 180.0))], now=1_737_369_075.0)
        [inc] = incidents()
        data = json.loads(json.dumps(inc.to_dict()))  # JSON-serialisable as is

    assert {"id", "status", "severity", "title", "root_cause", "root_cause_candidates",
            "affected_endpoints", "first_detected", "last_seen", "trace_correlation",
            "anomalies"} <= set(data)
    assert re.fullmatch(r"INC-\d+-\d+", data["id"])
    assert data["status"] == "open"
    assert data["severity"] in ("low", "medium", "high", "critical")
    assert data["title"] == "payment latency 1250ms (baseline 180ms)"
    assert data["root_cause"] == {"service": "shop", "endpoint": "payment",
                                  "issue": "Latency spike: 1250ms (baseline: 180ms)"}
    candidates = data["root_cause_candidates"]
    # evidence: the share times the strength of the strongest evidence (6, the gate's 1e-6, by default)
    assert candidates[0] == {"service": "shop", "endpoint": "payment", "score": 0.9, "evidence": 5.4}
    assert all(set(c) == {"service", "endpoint", "score", "evidence"} for c in candidates)
    assert data["affected_endpoints"] == ["payment", "checkout"]
    assert data["first_detected"] == "2025-01-20T10:30:15Z"
    assert data["last_seen"] == "2025-01-20T10:31:15Z"
    assert ISO_Z.match(data["first_detected"]) and ISO_Z.match(data["last_seen"])
    assert data["trace_correlation"] == {"trace_id": "ab" * 16,
                                         "correlated_failures": ["payment_latency", "checkout_latency"]}
    assert len(data["anomalies"]) == 3
    first = data["anomalies"][0]
    assert first["endpoint"] == "payment" and first["type"] == "latency"
    assert first["observed"] == 1250.0 and first["baseline"] == 180.0
    assert ISO_Z.match(first["detected_at"])


def test_a_root_blamed_only_by_its_callers_says_so(app):
    """Payment has no baseline yet, so only checkout looked slow; the title must still name payment."""
    with app.app_context():
        [inc], _ = apply([group("payment", latency("checkout", 950.0, 60.0))], now=1_000.0)
        assert inc.title == "payment is failing its callers (checkout latency)"
        assert inc.root_issue == "Blamed by traces of checkout: Latency spike: 950ms (baseline: 60ms)"
        assert inc.affected == ["payment", "checkout"]


def test_candidates_carry_the_evidence_of_the_latest_cycle(app):
    """Issue 24: candidates rank across incidents by evidence (share x strength), not by share: a
    blip's one candidate (share 1.0, weak) ranks below a strong fault's root (share 0.9); an
    incident updated by a weak echo of its fault carries the echo's strength, not its past."""
    strong = replace(latency("payment", 1250.0, 180.0), strength=40.0)
    with app.app_context():
        apply([group("payment", strong)], now=1_737_369_015.0)
        apply([Group(root=("shop", "blip"), anomalies=[latency("blip", 90.0, 20.0)],
                     candidates=[(("shop", "blip"), 1.0)])], now=1_737_369_020.0)
        found = {i.root_endpoint: i.to_dict()["root_cause_candidates"] for i in incidents()}
        assert found["payment"][0]["evidence"] == 36.0  # 0.9 x 40
        assert found["blip"] == [{"service": "shop", "endpoint": "blip", "score": 1.0, "evidence": 6.0}]
        ranked = sorted((c for cs in found.values() for c in cs), key=lambda c: -c["evidence"])
        assert ranked[0]["endpoint"] == "payment"
        apply([group("payment", latency("payment", 400.0, 180.0))], now=1_737_369_075.0)  # an echo
        [echo] = [i.to_dict() for i in incidents() if i.root_endpoint == "payment"]
    assert echo["root_cause_candidates"][0]["evidence"] == 5.4  # 0.9 x 6
