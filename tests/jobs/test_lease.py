"""The cycle lease: its length (``AIOPS_CYCLE_LEASE``) and what it blocks.

The end-to-end failover (a lease owner killed mid-cycle, another instance
taking over) is ``tests/e2e/test_instances.py``.
"""

from __future__ import annotations

import time

import pytest

from aiops.jobs.cycle import claim, run_claimed
from aiops.settings import Settings, reconfigure, settings_of
from aiops.store.models import DetectionCycle, DetectionState
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
