"""Times as users write them: ISO 8601, epoch seconds, durations back from now."""

from __future__ import annotations

import pytest

from telemetry import times

NOW = 1_800_000_000.0
T = 1_800_000_000.0 - 3600  # 2027-01-15T07:00:00Z


def test_iso_forms():
    assert times.iso_time("2027-01-15T07:00:00Z") == T
    assert times.iso_time("2027-01-15t07:00:00z") == T
    assert times.iso_time("2027-01-15T08:00:00+01:00") == T
    assert times.iso_time("2027-01-15T07:00:00") == T  # no offset: UTC
    assert times.iso_time("2027-01-15T06:59:60Z") == T - 1  # a leap second, as :59


@pytest.mark.parametrize("raw", ["", "yesterday", "2027-13-01T00:00:00Z", "9" * 65, None, 5])
def test_iso_refuses_what_is_not_a_time(raw):
    with pytest.raises(ValueError, match="ISO 8601"):
        times.iso_time(raw)


def test_instant_takes_epoch_seconds_too():
    assert times.instant("1737404800.5") == 1737404800.5
    assert times.instant("2027-01-15T07:00:00Z") == T
    with pytest.raises(ValueError):
        times.instant(" 2027-01-15T07:00:00Z")  # as the OpenAPI patterns say: no padding
    with pytest.raises(ValueError, match="epoch seconds or an ISO 8601"):
        times.instant("1e9")


@pytest.mark.parametrize("raw,back", [("90s", 90), ("15m", 900), ("6h", 21_600), ("7d", 604_800),
                                      ("2W", 1_209_600)])
def test_moment_takes_a_duration_back_from_now(raw, back):
    assert times.moment(raw, NOW) == NOW - back


def test_moment_takes_a_time_too_and_says_what_it_expected():
    assert times.moment("2027-01-15T07:00:00Z", NOW) == T
    with pytest.raises(ValueError, match=r"15m, 6h, 7d.*'soon'"):
        times.moment("soon", NOW)
    assert times.moment("999999w", NOW) < 0  # before 1970: every stored span is after it
    with pytest.raises(ValueError):
        times.moment("-5m", NOW)


def test_a_range_is_held_within_the_years_an_answer_can_write():
    assert times.time_range("999999w", "", NOW, "1h") == (0.0, NOW)
    assert times.time_range("0923-09-20T07:10:25Z", "999999999999", NOW, "1h") == (0.0, times.LAST_SECOND)
    assert times.time_range("", "", NOW, "15m") == (NOW - 900, NOW)
    with pytest.raises(ValueError, match="'until' must be"):
        times.time_range("1h", "later", NOW, "15m")
    with pytest.raises(ValueError, match="'since' must not be after 'until'"):
        times.time_range("1h", "2h", NOW, "15m")


@pytest.mark.parametrize(("raw", "expected"), [("300", 300), (" 5m ", 300), ("1H", 3600), ("1d", 86_400),
                                               ("30s", 30)])
def test_seconds_takes_whole_seconds_or_a_duration(raw, expected):
    assert times.seconds(raw) == expected


@pytest.mark.parametrize("raw", ["", "5.5", "-5", "5 m", "5x", "１０", "9" * 10])
def test_seconds_says_what_it_expected(raw):
    with pytest.raises(ValueError, match="whole seconds .* or a duration"):
        times.seconds(raw)
