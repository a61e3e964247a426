"""The cycle lease: its length (``AIOPS_CYCLE_LEASE``) and what it blocks.

The end-to-end failover (a lease owner killed mid-cycle, another instance
taking over) is ``tests/e2e/test_instances.py``.
"""

from __future__ import annotations

import time

import pytest

from aiops.jobs.cycle import run_claimed, run_cycle
from aiops.jobs.lease import claim, release
from aiops.settings import Settings, reconfigure, settings_of
from aiops.store.models import DetectionCycle, DetectionState, Incident
from telemetry.db import db


def test_default_lease_is_at_least_a_minute_and_four_intervals():
    assert Settings(detection_interval=1.0).cycle_lease_seconds == 60.0
    assert Settings(detection_interval=30.0).cycle_lease_seconds == 120.0
    assert Settings(detection_interval=1.0, cycle_lease=2.5).cycle_lease_seconds == 2.5


def test_lease_setting_must_be_positive():
    assert Settings.load({"AIOPS_CYCLE_LEASE": "7.5"}).cycle_lease == 7.5
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ValueError, match="AIOPS_CYCLE_LEASE"):
            Settings.load({"AIOPS_CYCLE_LEASE": bad})


def test_an_abandoned_lease_blocks_cycles_until_it_expires(app):
    """A claim whose process died (no cycle row, lease left behind) holds until the lease runs out."""
    reconfigure(app, detection_interval=0.01, cycle_lease=0.5)
    with app.app_context():
        assert claim(None, 0.01, settings_of(app).cycle_lease_seconds) is not None  # ... and then "dies"
        abandoned = db.session.get(DetectionState, 1).lease_until
        db.session.rollback()
        assert run_claimed(settings_of(app), force=False) is None
        assert run_claimed(settings_of(app), force=True) is None  # not even a forced cycle
        time.sleep(max(0.0, abandoned - time.time()) + 0.05)
        summary = run_claimed(settings_of(app), force=False)
        assert summary is not None and summary["started_at"] >= abandoned
        assert db.session.get(DetectionState, 1).lease_until is None
        assert db.session.query(DetectionCycle).count() == 1


def _taken_over(claimed_at: float, lease: float) -> tuple:
    """Another process claims once this claim's lease ran out: its owner, claim time and lease."""
    successor = ("elsewhere:4242", claimed_at + lease + 1.0, claimed_at + 2 * lease + 1.0)
    state = db.session.get(DetectionState, 1)
    state.lease_owner, state.last_cycle_at, state.lease_until = successor
    db.session.commit()
    return successor


def test_a_cycle_that_outlived_its_lease_writes_nothing_and_leaves_the_successors_lease(app, client):
    """A frozen or very slow cycle is taken over while it runs: when it gets to write, its claim
    is no longer the row's, so it writes nothing (its successor reads the same spans) and does not
    give back the lease it no longer holds."""
    reconfigure(app, detection_interval=0.01, cycle_lease=0.5)
    for _ in range(30):
        client.post("/checkout", json={"amount": 1})
    with app.app_context():
        # The spans are written before the test plays "another process": on SQLite, the buffer's writer
        # committing between this session's read and its write would fail the write (database is locked).
        app.extensions["aiops_buffer"].flush()
        settings = settings_of(app)
        before = db.session.get(DetectionState, 1)
        cursor, cycles = (before.cursor, before.cycles) if before else (0, 0)
        db.session.rollback()
        claimed_at = claim(None, settings.detection_interval, settings.cycle_lease_seconds)
        successor = _taken_over(claimed_at, settings.cycle_lease_seconds)
        assert run_cycle(settings, started_at=claimed_at) is None
        state = db.session.get(DetectionState, 1)
        assert (state.lease_owner, state.last_cycle_at, state.lease_until) == successor
        assert (state.cursor, state.cycles) == (cursor, cycles)  # the successor reads the same spans
        assert db.session.query(DetectionCycle).count() == 0
        release(claimed_at)  # a failed cycle gives back only its own claim
        state = db.session.get(DetectionState, 1)
        assert state.lease_until == successor[2]


def test_a_cycle_that_still_holds_its_lease_writes_and_gives_it_back(app, client):
    reconfigure(app, detection_interval=0.01, cycle_lease=30.0)
    client.post("/simulate/errors", json={"service": "payment", "rate": 1.0})
    for _ in range(30):
        client.post("/checkout", json={"amount": 1})
    with app.app_context():
        summary = run_claimed(settings_of(app), force=True)
        assert summary is not None and summary["spans"] > 0
        assert db.session.get(DetectionState, 1).lease_until is None
        assert db.session.query(DetectionCycle).count() == 1
        assert db.session.query(Incident).count() == len(summary["incidents_opened"])
