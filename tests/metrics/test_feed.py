"""Metric evidence read from the store (aiops.metrics.feed), both backends: the resource series of
the services asked for, judged at the cycle's clock; other names, services and later points unread."""

from __future__ import annotations

from aiops.metrics.feed import follow, loader, window_of
from telemetry.db import db
from telemetry.store import insert_metrics


def test_the_hogged_pod_is_found_among_the_services_asked_for(app):
    rows = []
    for minute in range(12):
        t = 1_000.0 + 60 * minute
        for service in ("orders", "payments", "billing"):
            hog = service in ("orders", "billing") and minute == 11
            rows.append(
                (
                    t,
                    service,
                    f"{service}-1",
                    None,
                    "k8s.pod.cpu.usage",
                    None,
                    (2.0 if hog else 0.2) + 0.001 * (minute % 3),
                )
            )
            rows.append((t, service, f"{service}-1", None, "app.queue.depth", None, 99.0 if hog else 1.0))
    rows.append((1_000.0 + 60 * 12, "payments", "payments-1", None, "k8s.pod.cpu.usage", None, 9.0))  # later
    with app.app_context():
        insert_metrics(db.engine, rows)
        found = loader(1_000.0 + 60 * 11 + 5)(["orders", "payments"])
    assert set(found) == {"orders"}  # billing was not asked for; payments' rise is after the clock
    (shift,) = found["orders"].signals
    assert shift.name == "k8s.pod.cpu.usage" and shift.pod == "orders-1" and shift.z > 50
    assert shift.band.median < 0.21 < shift.observed


def _hog_rows(start: float, minutes: int, services: tuple[str, ...], hogged: dict[str, int]) -> list[tuple]:
    """A point a minute for each service's CPU and memory, and a noise series; ``hogged``: the
    minute from which a service's CPU is ten times its normal."""
    rows = []
    for minute in range(minutes):
        t = start + 60 * minute
        for n, service in enumerate(services):
            cpu = 0.2 + 0.01 * ((minute * (n + 3)) % 5)
            if minute >= hogged.get(service, minutes):
                cpu *= 10
            rows.append((t, service, f"{service}-1", None, "k8s.pod.cpu.usage", None, cpu))
            rows.append((t, service, f"{service}-1", None, "k8s.pod.memory.usage", None, 1e8 + minute))
            rows.append((t, service, f"{service}-1", None, "app.queue.depth", None, 99.0 * minute))
    return rows


def _found(suspects: dict) -> dict:
    return {s: sorted((x.name, x.pod, round(x.z, 6), x.band.points) for x in m.signals)
            for s, m in suspects.items()}


def test_the_window_kept_between_cycles_judges_as_a_read_of_the_store_does(app):
    """Cycle after cycle (points stored between them, a service reached only later, points that
    arrive late), the window's verdicts equal a fresh read's; a gap, or a clock that went back,
    starts a new window."""
    services = ("orders", "payments", "billing")
    with app.app_context():
        window = window_of(app)
        insert_metrics(db.engine, _hog_rows(0.0, 20, services, {}))  # before the window started
        clock = 60 * 19 + 5
        follow(window, clock)
        db.session.rollback()
        base = window.base
        for minute in range(20, 40):
            rows = _hog_rows(60.0 * minute, 1, services, {"orders": 0} if minute >= 30 else {})
            if minute == 35:  # a point of minute 34 that arrives late
                rows.append((60.0 * 34 + 1, "billing", "billing-1", None, "k8s.pod.cpu.usage", None, 5.0))
            insert_metrics(db.engine, rows)
            clock = 60 * minute + 5
            follow(window, clock)
            asked = services[:2] if minute < 34 else services  # billing is reached from minute 34
            kept = loader(clock, window=window)(asked)
            assert _found(kept) == _found(loader(clock)(asked)), minute
            db.session.rollback()  # the cycle's transaction ends: the next one sees the new points
            if 30 <= minute <= 33:  # later, the hog is its normal
                assert "orders" in kept, minute
            assert ("billing" in kept) == (minute == 35), minute  # its late point, once stored
        assert window.base == base and window.loaded == set(services)
        assert len(window.series) == 6  # resource series only: the queue depth is no RCA evidence

        follow(window, clock + window.span + 1)  # a gap longer than the window: a new one
        assert window.base > base and not window.loaded and not window.series
        follow(window, clock)  # the clock went back: a new one
        assert window.at == clock and not window.series


def test_a_window_that_would_hold_too_many_points_gives_way_to_reads_of_the_store(app):
    services = ("orders", "payments")
    with app.app_context():
        insert_metrics(db.engine, _hog_rows(0.0, 12, services, {"payments": 11}))
        window = window_of(app)
        window.max_points = 10
        follow(window, 60 * 10 + 5)
        db.session.rollback()
        insert_metrics(db.engine, _hog_rows(60.0 * 11, 1, services, {"payments": 0}))
        follow(window, 60 * 11 + 5)
        found = loader(60 * 11 + 5, window=window)(services)  # 24 older points: more than it may hold
        assert not window.usable(60 * 11 + 5)
        assert set(found) == {"payments"} and _found(found) == _found(loader(60 * 11 + 5)(services))

