"""A silence body checked field by field (pure), and a silence's state from the clock."""

from __future__ import annotations

import pytest

from aiops.silences import InvalidSilence, specs

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
MATCH = [{"name": "service", "value": "shop"}]


def body(**fields) -> dict:
    return {"matchers": MATCH, "ends_at": "2027-01-15T10:00:00Z", **fields}


def field_of(raw) -> str:
    with pytest.raises(InvalidSilence) as err:
        specs.parse(raw, NOW)
    return err.value.field


def test_starts_now_by_default_and_keeps_who_and_why():
    spec = specs.parse(body(created_by="alice", comment="  db upgrade "), NOW)
    assert (spec.starts_at, spec.ends_at) == (NOW, NOW + 7200)
    assert (spec.created_by, spec.comment) == ("alice", "db upgrade")
    assert specs.parse(body(), NOW, default_by="web").created_by == "web"


def test_iso_8601_forms():
    assert specs.parse_time("2027-01-15T08:00:00Z", "t") == NOW
    assert specs.parse_time("2027-01-15t08:00:00z", "t") == NOW
    assert specs.parse_time("2027-01-15T09:00:00+01:00", "t") == NOW
    assert specs.parse_time("2027-01-15T08:00:00", "t") == NOW  # no offset: UTC
    assert specs.parse_time("2027-01-15T07:59:60Z", "t") == NOW - 1  # a leap second, as :59
    spec = specs.parse(body(starts_at="2027-01-15T09:00:00Z"), NOW)
    assert spec.starts_at == NOW + 3600  # a maintenance window that starts later


@pytest.mark.parametrize(("raw", "field"), [
    ([], "body"),
    ({"ends_at": "2027-01-15T10:00:00Z"}, "matchers"),
    (body(matchers=[{"name": "pod", "value": "x"}]), "matchers[0].name"),
    (body(ends_at=None), "ends_at"),
    ({"matchers": MATCH}, "ends_at"),
    (body(ends_at="tomorrow"), "ends_at"),
    (body(ends_at=1800007200), "ends_at"),
    (body(ends_at="2027-01-15T10:00:00Z" + " " * 60), "ends_at"),
    (body(starts_at="2027-13-01T00:00:00Z"), "starts_at"),
    (body(starts_at="2027-01-15T11:00:00Z"), "ends_at"),  # the end before the start
    (body(starts_at="2027-01-15T10:00:00Z"), "ends_at"),  # ... or at it
    (body(starts_at="2027-01-15T06:00:00Z", ends_at="2027-01-15T07:00:00Z"), "ends_at"),  # in the past
    (body(ends_at="2029-01-15T10:00:00Z"), "ends_at"),  # longer than MAX_DURATION
    (body(created_by="x" * (specs.MAX_CREATED_BY + 1)), "created_by"),
    (body(created_by=["alice"]), "created_by"),
    (body(comment="x" * (specs.MAX_COMMENT + 1)), "comment"),
    (body(comment="a\x00b"), "comment"),
    (body(mute=True), "mute"),
])
def test_bad_bodies_name_their_field(raw, field):
    assert field_of(raw) == field


def test_state_follows_the_clock():
    assert specs.state(NOW, NOW + 60, NOW - 1) == "pending"
    assert specs.state(NOW, NOW + 60, NOW) == "active"
    assert specs.state(NOW, NOW + 60, NOW + 59.9) == "active"
    assert specs.state(NOW, NOW + 60, NOW + 60) == "expired"  # expires by itself, no job needed
