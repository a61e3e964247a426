"""The robust per-series baselines (aiops.metrics.baseline): bands at the series' own resolution,
rises measured in spreads, floors for flat series, restarts, and the one name -> kind mapping."""

from __future__ import annotations

import pytest

from aiops.metrics import baseline as mb
from aiops.metrics.kinds import CPU, MEMORY, RESTARTS, kind_of

RULES = mb.BandRules()
KEY = ("orders", "orders-7d9f", "k8s.pod.cpu.usage", None)


def minutely(values, start=0.0, step=60.0):
    return [(start + i * step, v) for i, v in enumerate(values)]


def test_the_band_is_the_median_and_quartiles():
    b = mb.band([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (b.q1, b.median, b.q3, b.points) == (2.0, 3.0, 4.0, 5)
    assert mb.band([1.0]) is None
    assert mb.step([0.0, 60.0, 120.0, 185.0]) == 60.0
    assert mb.step([5.0]) is None


def test_a_cpu_hog_leaves_its_band_by_many_spreads():
    normal = [0.20, 0.22, 0.21, 0.19, 0.23, 0.20, 0.21, 0.22, 0.20, 0.21]
    points = minutely([*normal, 1.9])
    now = points[-1][0] + 5
    shift = mb.judge(points, now, CPU, RULES, KEY)
    assert shift is not None and shift.z > 50
    assert shift.band.median == pytest.approx(0.21) and shift.observed == 1.9
    assert shift.onset == points[-1][0]
    assert "k8s.pod.cpu.usage of pod orders-7d9f 1.9 (normal" in shift.describe()
    assert shift.to_json()["normal"] == [shift.band.q1, shift.band.q3]


def test_ordinary_wobble_and_falls_are_not_shifts():
    normal = [0.20, 0.22, 0.21, 0.19, 0.23, 0.20, 0.21, 0.22, 0.20, 0.21]
    assert mb.judge(minutely([*normal, 0.23]), 660.0, CPU, RULES, KEY) is None
    assert mb.judge(minutely([*normal, 0.01]), 660.0, CPU, RULES, KEY) is None  # only rises count


def test_a_flat_series_is_held_by_the_floors():
    flat = minutely([100.0] * 10 + [103.0])
    assert mb.judge(flat, 660.0, MEMORY, RULES, KEY) is None  # 3 % of the median: within 5 %
    restarts = minutely([2.0] * 10 + [3.0])
    shift = mb.judge(restarts, 660.0, RESTARTS, RULES, ("orders", "p", "k8s.container.restarts", None))
    assert shift is not None and shift.z == pytest.approx(4.0)


def test_each_series_is_judged_at_its_own_resolution():
    # Ten-second points: the recent ones are the last two steps (held at 30 s), the rest is normal.
    fast = minutely([0.2] * 60 + [0.9, 0.9], step=10.0)
    shift = mb.judge(fast, 615.0, CPU, RULES, KEY)
    assert shift is not None and shift.band.points >= 55
    # Too little history: no verdict.
    assert mb.judge(minutely([0.2, 0.2, 0.2, 5.0]), 185.0, CPU, RULES, KEY) is None


def test_a_services_score_counts_each_kind_once():
    band = mb.Band(1.0, 0.9, 1.1, 10)
    shifts = [
        mb.MetricShift("a", "a-1", "k8s.pod.cpu.usage", CPU, None, band, 5.0, 20.0, 1.0),
        mb.MetricShift("a", "a-1", "k8s.pod.cpu_limit_utilization", CPU, None, band, 5.0, 19.0, 1.0),
        mb.MetricShift("a", "a-1", "k8s.pod.memory.usage", MEMORY, None, band, 5.0, 4.0, 2.0),
        mb.MetricShift("b", "b-1", "container.cpu.usage", CPU, None, band, 5.0, 6.0, 3.0),
    ]
    found = mb.suspects(shifts)
    assert found["a"].score == 24.0 and found["b"].score == 6.0 and found["a"].onset == 1.0


def test_the_mapping_uses_the_semantic_convention_names():
    assert kind_of("k8s.pod.cpu.usage") == CPU
    assert kind_of("process.cpu.utilization") == CPU
    assert kind_of("container.memory.working_set") == MEMORY
    assert kind_of("k8s.container.restarts") == RESTARTS
    assert kind_of("http.server.request.duration") is None
