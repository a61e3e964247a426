"""SLO service functions on a real database: the config file, the SQL aggregates (availability,
latency, throughput) and the cache of daily counts."""

from __future__ import annotations

import json

import pytest

from aiops.slos import queries
from aiops.slos import service as slo_service
from aiops.slos.rules import DAY, Counts
from aiops.store.declared import Slo
from telemetry.db import db
from telemetry.models import Span
from tests.conftest import dispose_app, make_app
from tests.support.factories import T0, insert_spans, span

NOW = (T0 // DAY) * DAY + 12 * 3600  # noon UTC


def _slo(**values) -> Slo:
    base = dict(name="x", service="shop", endpoint="payment", sli="availability", objective=99.0,
                threshold_ms=None, min_rps=None, window_days=30, daily=None)
    base.update(values)
    return Slo(**base)


def test_window_counts_are_aggregated_per_window(app):
    spans = [span("payment", start_time=NOW - 100, status_code=503),  # in every window
             span("payment", start_time=NOW - 100, status_code=404),  # a 4xx is not the server's fault
             span("payment", start_time=NOW - 2000, status_code=None, error=True),  # 30m.. and up
             span("payment", start_time=NOW - 7200),  # 6h and 3d
             span("payment", start_time=NOW - 2 * DAY),  # 3d only
             span("inventory", start_time=NOW - 100, status_code=500),  # another endpoint
             span("payment", service="other", start_time=NOW - 100, status_code=500)]  # another service
    insert_spans(app, spans)
    with app.app_context():
        windows, today = queries.window_counts(_slo(), NOW)
        assert windows == {"5m": Counts(1, 2), "30m": Counts(1, 2), "1h": Counts(1, 3),
                           "6h": Counts(2, 4), "3d": Counts(3, 5)}
        assert today == Counts(2, 4)
        whole, _ = queries.window_counts(_slo(endpoint=""), NOW)
        assert whole["5m"] == Counts(1, 3)
        slow, _ = queries.window_counts(_slo(sli="latency", threshold_ms=50.0), NOW)
        assert slow["5m"] == Counts(2, 2)


def test_latency_counts_the_requests_within_the_threshold(app):
    insert_spans(app, [span("payment", duration_ms=d, start_time=NOW - 10) for d in (10, 100, 100.5, 900)])
    with app.app_context():
        windows, _ = queries.window_counts(_slo(sli="latency", threshold_ms=100.0), NOW)
    assert windows["5m"] == Counts(2, 4)


def test_throughput_counts_minutes_from_the_first_with_data(app):
    minute = int(NOW // 60)
    # 10 minutes ago traffic started at 3 requests a minute; the last 3 complete minutes had one each.
    spans = [span("payment", start_time=(minute - m) * 60 + i) for m in range(4, 11) for i in range(3)]
    spans += [span("payment", start_time=(minute - m) * 60 + 5) for m in range(1, 4)]
    spans += [span("payment", start_time=minute * 60 + 1) for _ in range(9)]  # the minute under way
    insert_spans(app, spans)
    with app.app_context():
        windows, today = queries.window_counts(_slo(sli="throughput", min_rps=0.05), NOW)  # 3 a minute
        assert windows["5m"] == Counts(2, 5)
        assert windows["30m"] == windows["3d"] == Counts(7, 10)
        assert today == Counts(7, 10)
        days = queries.daily_counts(_slo(sli="throughput", min_rps=0.05), int(NOW // DAY) - 1,
                                    int(NOW // DAY) - 1)
        assert days == {}


def test_the_daily_counts_are_cached_and_kept_for_30_days(app):
    today = int(NOW // DAY)
    insert_spans(app, [span("payment", start_time=(today - d) * DAY + 60, status_code=500 if d == 2 else 200)
                       for d in range(0, 40)])
    with app.app_context():
        slo = _slo()
        ev = slo_service.evaluate(slo, NOW)
        assert ev.daily["through"] == today - 1
        assert sorted(int(d) for d in ev.daily["days"]) == list(range(today - 29, today + 1))
        assert ev.daily["days"][str(today - 2)] == [0, 1]
        assert ev.budget_remaining == pytest.approx(1 - (1 / 30) / 0.01)
        slo.daily = ev.daily
        # The next evaluation reads only the days not cached: the spans of older days may be gone.
        db.session.query(Span).filter(Span.start_time < today * DAY).delete()
        db.session.commit()
        again = slo_service.evaluate(slo, NOW + 60)
        assert again.daily["days"] == ev.daily["days"]


def test_the_config_file_is_upserted_by_name(db_url, tmp_path):
    path = tmp_path / "slos.json"
    path.write_text(json.dumps([
        {"name": "pay", "service": "shop", "endpoint": "payment", "sli": "availability", "objective": 99.9},
        {"name": "bad", "service": "shop", "sli": "availability", "objective": 101},  # skipped, logged
        {"name": "fast", "service": "shop", "sli": "latency", "objective": 99, "threshold_ms": 300},
    ]))
    app = make_app(db_url, AIOPS_SLO_FILE=str(path))
    try:
        client = app.test_client()
        listed = client.get("/aiops/slos").get_json()["slos"]
        assert [(s["name"], s["source"]) for s in listed] == [("fast", "config"), ("pay", "config")]
        changed = {**{k: listed[1][k] for k in ("name", "service", "endpoint", "sli")}, "objective": 95}
        assert client.put(f"/aiops/slos/{listed[1]['id']}", json=changed).status_code == 200
    finally:
        dispose_app(app)
    pay = {"name": "pay", "service": "shop", "endpoint": "payment", "sli": "availability", "objective": 99.5}
    path.write_text(json.dumps({"slos": [pay]}))
    app = make_app(db_url, AIOPS_SLO_FILE=str(path))  # another process starting: the file wins again
    try:
        listed = app.test_client().get("/aiops/slos").get_json()["slos"]
        assert [(s["name"], s["objective"]) for s in listed] == [("fast", 99.0), ("pay", 99.5)]
    finally:
        dispose_app(app)


def test_a_toml_config_file(db_url, tmp_path):
    path = tmp_path / "slos.toml"
    path.write_text('[[slos]]\nname = "orders up"\nservice = "orders"\nsli = "throughput"\n'
                    'objective = 99.0\nmin_rps = 0.5\nwindow_days = 7\n')
    app = make_app(db_url, AIOPS_SLO_FILE=str(path))
    try:
        [slo] = app.test_client().get("/aiops/slos").get_json()["slos"]
        assert (slo["name"], slo["sli"], slo["min_rps"], slo["window_days"], slo["endpoint"]) == \
            ("orders up", "throughput", 0.5, 7, None)
    finally:
        dispose_app(app)


def test_an_unreadable_config_file_is_logged_not_fatal(db_url, tmp_path, caplog):
    path = tmp_path / "slos.json"
    path.write_text("{not json")
    app = make_app(db_url, AIOPS_SLO_FILE=str(path))
    try:
        assert app.test_client().get("/aiops/slos").get_json()["slos"] == []
        assert "AIOPS_SLO_FILE" in caplog.text
    finally:
        dispose_app(app)
