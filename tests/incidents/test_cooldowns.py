"""Per-pattern cooldowns (aiops.incidents.cooldowns): a pattern that fires again soon on the same root
does not page twice; after the cooldown, or as another kind, it pages. On SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from aiops.incidents import cooldowns
from aiops.store.models import Incident
from telemetry.db import db
from tests.support.factories import error, group
from tests.support.incident_cycles import POLICY, cycle

REFUSED = "Error spike: 100% of 10 requests failed (requests.exceptions.ConnectionError: Connection refused)"
POLICY_LONG_REOPEN = replace(POLICY, reopen_cooldown=7200.0)


def refused():
    return group("payment", replace(error("payment"), message=REFUSED, pattern="dependency"))


def full_disk():
    return group(
        "payment",
        replace(
            error("payment"),
            message="Error spike (OSError: [Errno 28] No space left on device)",
            pattern="exhaustion",
        ),
    )


def triggers(changes):
    return [i.id for i, e in changes.notify if e == "trigger"]


def fire_and_resolve(start: float, make=refused) -> tuple[str, float]:
    """Seen twice (paged), then quiet until resolved; returns (incident id, resolved at)."""
    [inc] = cycle(start, make(), policy=POLICY_LONG_REOPEN).opened
    assert triggers(cycle(start + 30, make(), policy=POLICY_LONG_REOPEN)) == [inc.id]
    cycle(start + 60, policy=POLICY_LONG_REOPEN)
    assert cycle(start + 90, policy=POLICY_LONG_REOPEN).resolved
    return inc.id, start + 90


def test_the_table_covers_every_pattern_and_keeps_the_older_kinds():
    assert cooldowns.minutes("dependency") == 30 and cooldowns.minutes("exhaustion") == 60
    assert (
        cooldowns.minutes("latency") == 0 and cooldowns.minutes("no-such-kind") == cooldowns.DEFAULT_MINUTES
    )
    assert cooldowns.is_held("dependency", "dependency", 1000.0, 1000.0 + 29 * 60)
    assert not cooldowns.is_held("dependency", "dependency", 1000.0, 1000.0 + 30 * 60)
    assert not cooldowns.is_held("dependency", "exhaustion", 1000.0, 1001.0)


def test_a_dependency_failure_that_recurs_soon_does_not_page_twice(app):
    with app.app_context():
        inc_id, resolved = fire_and_resolve(1000.0)
        again = cycle(resolved + 200, refused(), policy=POLICY_LONG_REOPEN)
        assert [i.id for i in again.reopened] == [inc_id]
        held = cycle(resolved + 230, refused(), policy=POLICY_LONG_REOPEN)  # persisted: would page
        assert triggers(held) == [] and held.remediate == []
        stored = db.session.get(Incident, inc_id)
        assert stored.status == "open" and stored.confirmed_at is None
        events = [e for e in stored.timeline if e["event"] == "cooldown"]
        assert len(events) == 1 and "dependency" in events[0]["detail"] and "30 min" in events[0]["detail"]
        cycle(resolved + 260, refused(), policy=POLICY_LONG_REOPEN)
        assert len([e for e in db.session.get(Incident, inc_id).timeline if e["event"] == "cooldown"]) == 1
        # Still failing once the cooldown is over (30 min after the first page at 1030): it pages.
        late = cycle(1030.0 + 1800, refused(), policy=POLICY_LONG_REOPEN)
        assert triggers(late) == [inc_id]


def test_another_kind_on_the_same_root_pages_at_once(app):
    with app.app_context():
        inc_id, resolved = fire_and_resolve(1000.0)
        cycle(resolved + 200, full_disk(), policy=POLICY_LONG_REOPEN)
        assert triggers(cycle(resolved + 230, full_disk(), policy=POLICY_LONG_REOPEN)) == [inc_id]
        stored = db.session.get(Incident, inc_id)
        assert (stored.paged_kind, stored.paged_at) == ("exhaustion", resolved + 230)


def test_a_linked_recurrence_inherits_the_earlier_page(app):
    """After the reopen cooldown a recurrence is a new incident linked to the old one: the page of
    the old one still holds it within the pattern's cooldown."""
    with app.app_context():
        old_id, resolved = fire_and_resolve(1000.0, full_disk)
        short = replace(POLICY, reopen_cooldown=60.0)
        [new] = cycle(resolved + 600, full_disk(), policy=short).opened
        assert new.related_to == old_id
        assert triggers(cycle(resolved + 630, full_disk(), policy=short)) == []
        rows = list(db.session.scalars(select(Incident).order_by(Incident.first_detected)))
        assert [r.paged_kind for r in rows] == ["exhaustion", None]
