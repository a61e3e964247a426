"""telemetry.series: the buckets (pure), the percentiles (pure, as percentile_cont), and the store's
read on SQLite and PostgreSQL (exact there, sampled past MAX_READ on SQLite)."""

from __future__ import annotations

import random
import statistics

import pytest

from telemetry import series
from telemetry.columns import KIND_CLIENT
from tests.support.factories import insert_spans, row_of, span

# -- plan ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "step"), [(900, 5), (6 * 3600, 120), (7 * 86400, 3600), (86400, 600)])
def test_an_automatic_step_is_round_and_gives_at_most_the_target(seconds, step):
    p = series.plan(1_000_000.0, 1_000_000.0 + seconds)
    assert p.step == step
    assert p.buckets <= series.TARGET_POINTS


def test_buckets_are_aligned_on_the_step_and_cover_the_range():
    p = series.plan(1003.0, 1100.0, step=10)
    assert p.start == 1000 and p.times()[0] == 1000 and p.times()[-1] == 1090
    assert p.start + p.buckets * p.step >= p.until


def test_a_step_giving_too_many_points_is_refused_naming_the_least_step():
    with pytest.raises(ValueError, match="at most 2000 .* at least 303 s"):
        series.plan(0.0, 7 * 86400.0, step=1)
    least = series.plan(0.0, 7 * 86400.0, step=303)
    assert least.buckets <= series.MAX_POINTS


@pytest.mark.parametrize("step", [0, -5, series.MAX_STEP + 1])
def test_a_step_out_of_bounds_is_refused(step):
    with pytest.raises(ValueError, match="'step' must be between"):
        series.plan(0.0, 100.0, step=step)


def test_an_empty_range_is_refused():
    with pytest.raises(ValueError, match="'since' must be before 'until'"):
        series.plan(100.0, 100.0)


# -- quantile and fold ------------------------------------------------------------------------


def test_quantile_interpolates_as_percentile_cont():
    values = sorted(random.Random(3).uniform(1, 500) for _ in range(101))
    assert series.quantile(values, 0.5) == statistics.median(values)
    # statistics' "inclusive" method is percentile_cont's linear interpolation
    assert series.quantile(values, 0.95) == pytest.approx(statistics.quantiles(values, n=20,
                                                                               method="inclusive")[-1])
    assert series.quantile([4.0], 0.95) == 4.0
    assert series.quantile([], 0.5) is None
    assert series.quantile([10.0, 20.0], 0.95) == pytest.approx(19.5)


def test_fold_gives_one_point_per_bucket_and_gaps_as_none():
    p = series.plan(0.0, 30.0, step=10)
    points = series.fold(p, [(0, 4, 1), (2, 2, 0)], [(0, 10.0), (0, 20.0), (0, 30.0), (0, 40.0),
                                                     (2, 5.0), (2, 7.0)])
    assert [pt["t"] for pt in points] == [0, 10, 20]
    first, empty, last = points
    assert first == {"t": 0, "requests": 4, "error_rate": 0.25, "p50_ms": 25.0, "p95_ms": 38.5}
    assert empty == {"t": 10, "requests": 0, "error_rate": None, "p50_ms": None, "p95_ms": None}
    assert last["p50_ms"] == 6.0 and last["error_rate"] == 0.0


# -- the store ----------------------------------------------------------------------------------


def _seed(app, now: float, n: int = 600) -> list[float]:
    rnd = random.Random(7)
    durations = [rnd.lognormvariate(3, 0.6) for _ in range(n)]
    rows = [row_of(span("payment", d, start_time=now - 3500 + i * (3000 / n),
                        status_code=500 if i % 20 == 0 else 200)) for i, d in enumerate(durations)]
    # Not the endpoint's own: a caller's CLIENT span named after it, another service, another endpoint.
    call = span("payment", 5000.0, start_time=now - 100)
    call.kind = KIND_CLIENT
    rows += [row_of(call), row_of(span("payment", 9000.0, service="other", start_time=now - 100)),
             row_of(span("checkout", 9000.0, start_time=now - 100))]
    insert_spans(app, rows)
    return durations


def test_the_store_gives_exact_percentiles_per_bucket(app):
    now = 1_800_000_000.0
    durations = _seed(app, now)
    with app.app_context():
        p = series.plan(now - 3600, now, step=3600)  # one bucket holds them all
        found = series.read("shop", "payment", p)
    assert found.sample_every == 1
    [point] = [pt for pt in found.points if pt["requests"]]
    ordered = sorted(durations)
    assert point["requests"] == len(durations) and point["error_rate"] == 0.05
    assert point["p50_ms"] == pytest.approx(series.quantile(ordered, 0.5), abs=1e-3)
    assert point["p95_ms"] == pytest.approx(series.quantile(ordered, 0.95), abs=1e-3)


def test_the_store_buckets_by_time(app):
    now = 1_800_000_000.0
    _seed(app, now)
    with app.app_context():
        p = series.plan(now - 3600, now, step=600)
        found = series.read("shop", "payment", p)
    assert len(found.points) == p.buckets
    # one span every 5 s from 3,500 s ago to 505 s ago
    assert [pt["requests"] for pt in found.points] == [100, 120, 120, 120, 120, 20]


def test_past_max_read_sqlite_samples_and_stays_close(sqlite_url, monkeypatch):
    from tests.conftest import dispose_app, make_app

    app = make_app(sqlite_url)
    try:
        now = 1_800_000_000.0
        durations = _seed(app, now, n=3000)
        monkeypatch.setattr(series, "MAX_READ", 600)
        with app.app_context():
            found = series.read("shop", "payment", series.plan(now - 3600, now, step=3600))
    finally:
        dispose_app(app)
    [point] = [pt for pt in found.points if pt["requests"]]
    assert found.sample_every == pytest.approx(5, rel=0.05)
    assert point["requests"] == 3000  # counts stay exact
    ordered = sorted(durations)
    assert point["p50_ms"] == pytest.approx(series.quantile(ordered, 0.5), rel=0.15)
    assert point["p95_ms"] == pytest.approx(series.quantile(ordered, 0.95), rel=0.2)


def test_recent_traces_are_the_slowest_and_the_latest_failed(app):
    now = 1_800_000_000.0
    _seed(app, now)
    with app.app_context():
        found = series.recent_traces("shop", "payment", now - 3600, now, 5)
    slow = [s.duration_ms for s in found["slowest"]]
    assert slow == sorted(slow, reverse=True) and len(slow) == 5 and max(slow) < 5000  # no CLIENT span
    failed = [s.start_time for s in found["failed"]]
    assert failed == sorted(failed, reverse=True) and all(s.error for s in found["failed"])


def test_a_range_past_the_largest_round_step_gets_whole_days():
    p = series.plan(0.0, 5 * 365 * 86400.0)
    assert p.step % 86400 == 0 and p.buckets <= series.TARGET_POINTS
