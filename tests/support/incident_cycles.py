"""The incident service driven as a detection cycle drives it: one write transaction per cycle.

With a policy that confirms, resolves and escalates quickly, so lifecycle tests
need few cycles.
"""

from __future__ import annotations

from aiops.incidents.lifecycle import apply_groups, resolve_quiet
from aiops.incidents.rules import Policy
from telemetry.db import begin_write, db

POLICY = Policy(correlation_window=300.0, resolve_after_cycles=2, notify_after_cycles=2,
                reopen_cooldown=600.0, escalate_after=3600.0, escalate_reopens=2, verify_after=30.0)


def cycle(now, *groups, policy=POLICY, total_requests=None):
    """One cycle's incident work, committed; returns the Changes."""
    db.session.rollback()
    begin_write()
    changes = resolve_quiet(apply_groups(list(groups), now, policy, total_requests), now, policy)
    db.session.commit()
    return changes
