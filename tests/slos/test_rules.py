"""The burn-rate math and the SRE workbook's multiwindow, multi-burn-rate rules, pure."""

from __future__ import annotations

import pytest

from aiops.slos import rules
from aiops.slos.rules import WINDOWS, Counts


def _same_share(bad_fraction: float, per_window: int = 100_000) -> dict[str, Counts]:
    bad = round(per_window * bad_fraction)
    return {name: Counts(per_window - bad, per_window) for name in WINDOWS}


def test_the_error_budget_is_the_share_allowed_to_fail():
    assert rules.error_budget(99.9) == pytest.approx(0.001)
    assert rules.error_budget(99.0) == pytest.approx(0.01)


def test_a_total_outage_pages_at_once():
    rates = rules.burn_rates(_same_share(1.0), 99.9)
    assert rates["5m"] == pytest.approx(1000.0)
    assert rules.status(rates) == "page"


def test_two_percent_errors_against_99_9_is_burn_20_and_pages():
    """The workbook's example: 2 % errors spend a 99.9 % budget 20x too fast (>= 14.4)."""
    rates = rules.burn_rates(_same_share(0.02), 99.9)
    assert rates["1h"] == pytest.approx(20.0)
    assert rules.firing(rates) == ("page", 14.4, "1h", "5m")
    assert rules.status(rates) == "page"


def test_a_fresh_slo_pages_on_a_total_outage():
    """Two minutes of data, all failing: every window holds only those two minutes, and pages."""
    fresh = dict.fromkeys(WINDOWS, Counts(0, 240))
    assert rules.status(rules.burn_rates(fresh, 99.9)) == "page"


def test_a_window_without_data_burns_nothing():
    assert rules.burn_rate(Counts(), 99.9) == 0.0
    assert rules.status(rules.burn_rates({}, 99.9)) == "ok"


@pytest.mark.parametrize("rates, expected", [
    ({"1h": 14.4, "5m": 14.4}, "page"),  # at the threshold
    ({"1h": 14.4, "5m": 14.3}, "ok"),  # the short window recovered: the alert resets
    ({"1h": 14.3, "5m": 100.0}, "ok"),  # a short spike that has not cost enough yet
    ({"6h": 6.0, "30m": 6.0}, "page"),
    ({"6h": 6.0, "30m": 5.9}, "ok"),
    ({"3d": 1.0, "6h": 1.0}, "ticket"),
    ({"3d": 0.99, "6h": 5.0}, "ok"),
    ({"3d": 2.0, "6h": 7.0, "30m": 7.0}, "page"),  # the most urgent rule wins
])
def test_both_windows_of_a_rule_must_burn(rates, expected):
    assert rules.status(rates) == expected


def test_budget_remaining_is_the_share_of_the_budget_left():
    assert rules.budget_remaining(Counts(1_000_000, 1_000_000), 99.9) == pytest.approx(1.0)
    assert rules.budget_remaining(Counts(999_500, 1_000_000), 99.9) == pytest.approx(0.5)
    assert rules.budget_remaining(Counts(998_000, 1_000_000), 99.9) == pytest.approx(-1.0)  # overspent


def test_history_has_one_point_a_day_oldest_first():
    today = 20_000
    daily = {today: Counts(999, 1000), today - 1: Counts(980, 1000)}
    points = rules.history(daily, today, 99.0)
    assert len(points) == 30
    assert points[-1] == {"date": "2024-10-04", "good": 999, "total": 1000, "compliance": 99.9, "met": True}
    assert points[-2]["met"] is False and points[-2]["compliance"] == 98.0
    assert points[0] == {"date": "2024-09-05", "good": 0, "total": 0, "compliance": None, "met": None}


def test_the_period_sums_its_days():
    daily = {10: Counts(1, 2), 9: Counts(3, 4), 5: Counts(100, 100)}
    assert rules.period_counts(daily, 10, 2) == Counts(4, 6)


def test_two_percent_errors_page_within_the_workbooks_detection_time():
    """After an hour of clean traffic, 2 % errors fill the 1-hour window at a burn of 20: it crosses
    14.4 after 14.4 / 20 x 60 = 43.2 minutes (the workbook's detection time), the 5-minute one at once."""
    per_minute = 1000

    def status_after(minutes: int) -> str:
        windows = {}
        for name, length in WINDOWS.items():
            span = length // 60
            bad_minutes = min(minutes, span)
            windows[name] = Counts(span * per_minute - bad_minutes * per_minute * 2 // 100, span * per_minute)
        return rules.status(rules.burn_rates(windows, 99.9))

    assert status_after(43) == "ok"
    assert status_after(44) == "page"
