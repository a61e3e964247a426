"""Rules evaluated over stored spans (SQLite and PostgreSQL): each built-in kind, a free query, dedup
across evaluations, one evaluation per interval, alerts through the outbox to a real webhook."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from aiops.jobs import worker
from aiops.outbox import deliver_due
from aiops.rules import evaluation, service
from aiops.settings import Settings, reconfigure, settings_of
from aiops.silences import service as silences
from aiops.store.declared import Rule, RuleAlert
from aiops.store.models import Notification, iso
from telemetry.db import db
from tests.support.factories import insert_spans, span
from tests.support.receivers import Receiver

NOW = time.time()


@pytest.fixture
def receiver():
    with Receiver() as hook:
        yield hook


def _traffic(app, ok: int = 18, slow: int = 1, failed: int = 1, at: float = NOW - 5) -> dict[str, list[str]]:
    """``ok`` fast traces, ``slow`` ones with a 1.5 s payment call, ``failed`` ones whose inventory
    call raised; each trace a checkout with a child. Returns the trace ids of each sort."""
    rows, ids = [], {"ok": [], "slow": [], "failed": []}
    for sort, n in (("ok", ok), ("slow", slow), ("failed", failed)):
        for i in range(n):
            root = span("checkout", 20.0, start_time=at - i * 0.1)
            if sort == "failed":
                child = span("inventory", 3.0, parent=root, start_time=root.start_time,
                             exception_type="StockError", exception_message="no stock")
            else:
                child = span("payment", 1500.0 if sort == "slow" else 8.0, parent=root,
                             start_time=root.start_time)
            rows += [root, child]
            ids[sort].append(root.trace_id)
    insert_spans(app, rows)
    return ids


def _rule(app, **body) -> int:
    with app.app_context():
        return service.create({"name": "r", **body}, NOW).id


def _run(app, at: float = NOW, force: bool = True) -> dict:
    with app.app_context():
        return evaluation.run_due(settings_of(app), now=at, force=force)


def _alerts(app) -> list[dict]:
    with app.app_context():
        db.session.rollback()
        return [service.alert_json(a) for a in service.alerts_page(100, None)]


def _rule_row(app, rule_id: int) -> dict:
    with app.app_context():
        return service.to_json(db.session.get(Rule, rule_id))


def test_high_latency(app):
    ids = _traffic(app)
    rule_id = _rule(app, kind="high_latency")
    assert _run(app)["evaluated"] == 1
    [alert] = _alerts(app)
    assert alert["anomaly_type"] == "high_latency" and alert["rule"] == "r"
    assert alert["trace_id"] == ids["slow"][0] and alert["span_name"] == "payment"
    assert alert["duration_ms"] == 1500.0 and alert["error_message"] is None
    assert (alert["affected_traces"], alert["total_traces"]) == (1, 20)
    assert alert["timestamp"] == iso(NOW)
    assert _rule_row(app, rule_id)["status"] == "firing"


def test_error_status(app):
    ids = _traffic(app, failed=2)
    _rule(app, kind="error_status")
    _run(app)
    [alert] = _alerts(app)
    assert alert["anomaly_type"] == "error_status" and alert["error_message"] == "StockError: no stock"
    assert alert["trace_id"] == ids["failed"][0] and alert["span_name"] == "inventory"
    assert sorted(alert["trace_ids"]) == sorted(ids["failed"]) and alert["affected_traces"] == 2


def test_high_error_rate_fires_above_its_share(app):
    _traffic(app, ok=17, slow=0, failed=3)  # 3 of 20: 15 %
    below = _rule(app, kind="high_error_rate", threshold=0.2)
    _run(app)
    assert _alerts(app) == [] and _rule_row(app, below)["value"] == pytest.approx(0.15)
    with app.app_context():
        service.update(below, {"name": "r", "kind": "high_error_rate", "threshold": 0.1}, NOW)
    _run(app)
    [alert] = _alerts(app)
    assert alert["anomaly_type"] == "high_error_rate" and alert["value"] == pytest.approx(0.15)
    assert (alert["affected_traces"], alert["total_traces"]) == (3, 20)


def test_a_free_query_with_p95(app):
    _traffic(app, ok=10, slow=2, failed=0)
    rule_id = _rule(app, query='{ name = "payment" }', aggregation="p95", threshold=1000)
    _run(app)
    [alert] = _alerts(app)
    assert alert["anomaly_type"] == "query" and alert["value"] == 1500.0 and alert["affected_traces"] == 12
    assert _rule_row(app, rule_id)["value"] == 1500.0


def test_the_window_bounds_what_is_read(app):
    _traffic(app, at=NOW - 600)  # ten minutes ago: outside a 60 s window
    rule_id = _rule(app, kind="error_status")
    _run(app)
    assert _alerts(app) == [] and _rule_row(app, rule_id)["status"] == "ok"
    with app.app_context():
        service.update(rule_id, {"name": "r", "kind": "error_status", "window_s": 900}, NOW)
    _run(app)
    assert len(_alerts(app)) == 1


def test_the_same_traces_are_one_alert(app):
    first = _traffic(app, slow=0, failed=2)
    _rule(app, kind="error_status")
    _run(app)
    _run(app, NOW + 1)  # the same two failed traces
    [alert] = _alerts(app)
    assert alert["seen"] == 2 and alert["last_seen"] == iso(NOW + 1)
    second = _traffic(app, ok=0, slow=0, failed=1, at=NOW + 2)  # a new failure: a new alert
    _run(app, NOW + 3)
    alerts = _alerts(app)
    assert len(alerts) == 2 and alerts[0]["affected_traces"] == 3
    assert set(alerts[0]["trace_ids"]) == {*first["failed"], *second["failed"]}
    # The first failures age out of the window: what is left is part of the last alert.
    _run(app, NOW + 61)
    assert len(_alerts(app)) == 2 and _alerts(app)[0]["seen"] == 2


def test_one_evaluation_per_interval(app):
    rule_id = _rule(app, kind="error_status")
    assert _run(app, NOW, force=False)["evaluated"] == 1
    assert _run(app, NOW + 10, force=False)["evaluated"] == 0  # within the 30 s interval
    with app.app_context():
        assert evaluation.claim(rule_id, NOW + 40, 30.0)  # a process takes it, and dies before recording
        assert not evaluation.claim(rule_id, NOW + 41, 30.0, force=True)  # leased: nobody else may
    assert _run(app, NOW + 400, force=False)["evaluated"] == 1  # the lease has expired


def test_a_deleted_rule_records_nothing(app):
    rule_id = _rule(app, kind="error_status")
    with app.app_context():
        assert evaluation.claim(rule_id, NOW, 30.0)
        service.delete(rule_id)
        assert evaluation.record(rule_id, None, "gone", NOW, settings_of(app)) is None


def test_alert_goes_to_the_rules_webhook(app, receiver):
    _traffic(app)
    _rule(app, kind="high_latency", webhook_url=receiver.url("/rule-hook"))
    _run(app)
    [alert] = _alerts(app)
    assert alert["notification"] == "queued"
    with app.app_context():
        assert deliver_due(settings_of(app), now=NOW) == 1
    [got] = receiver.requests
    assert got.path == "/rule-hook"
    body = got.json
    for field in ("anomaly_type", "trace_id", "span_name", "duration_ms", "error_message",
                  "affected_traces", "total_traces", "timestamp", "rule"):
        assert body[field] == alert[field], field
    assert body["event"] == "alert" and body["dedup_key"] == f"rule-{alert['rule_id']}-alert-{alert['id']}"
    with app.app_context():
        row = db.session.scalar(select(Notification))
        assert (row.channel, row.status, row.incident_id) == ("rule", "delivered", f"rule-{alert['rule_id']}")
        assert "/rule-hook" not in json.dumps(row.payload)  # the URL is the rule's, read when sent


def test_without_a_webhook_the_generic_one_gets_it(app, receiver):
    _traffic(app)
    _rule(app, kind="high_latency")
    reconfigure(app, webhook_url=receiver.url("/generic"))
    _run(app)
    with app.app_context():
        deliver_due(settings_of(app), now=NOW)
    assert [r.path for r in receiver.requests] == ["/generic"]
    assert receiver.requests[0].json["anomaly_type"] == "high_latency"


def test_retries_and_rate_limit_as_for_incidents(app):
    with Receiver(script=[503], default=200) as hook:
        _traffic(app, slow=0, failed=1)
        _rule(app, kind="error_status", webhook_url=hook.url("/h"), severity="high")
        _run(app)
        with app.app_context():
            deliver_due(settings_of(app), now=NOW)
            row = db.session.scalar(select(Notification))
            assert row.status == "pending" and row.attempts == 1  # 503: retried later
            deliver_due(settings_of(app), now=row.next_attempt_at)
            db.session.rollback()
            assert db.session.scalar(select(Notification)).status == "delivered"
        assert hook.count == 2
        _traffic(app, ok=0, slow=0, failed=1, at=NOW + 5)  # a new alert within the high limit (300 s)
        _run(app, NOW + 10)
        with app.app_context():
            rows = db.session.scalars(select(Notification).order_by(Notification.id)).all()
            assert rows[-1].next_attempt_at == pytest.approx(NOW + 300)
            assert deliver_due(settings_of(app), now=NOW + 20) == 0  # held


def test_a_silence_holds_the_alert_back(app, receiver):
    _traffic(app, slow=0, failed=1)
    _rule(app, kind="error_status", webhook_url=receiver.url("/h"))
    with app.app_context():
        silences.create({"matchers": [{"name": "kind", "value": "error_status"}],
                         "ends_at": iso(NOW + 3600)}, NOW - 1)
    _run(app)
    [alert] = _alerts(app)
    assert alert["notification"] == "silenced"
    with app.app_context():
        assert db.session.scalar(select(Notification)) is None


def test_a_failing_evaluation_is_recorded(app, monkeypatch):
    rule_id = _rule(app, kind="error_status")

    def broken(rule, now):
        raise RuntimeError("store unreachable")

    monkeypatch.setattr(evaluation, "evaluate", broken)
    assert _run(app)["evaluated"] == 1
    row = _rule_row(app, rule_id)
    assert row["status"] == "failed" and "store unreachable" in row["last_error"]


def test_config_file(app, tmp_path):
    toml = tmp_path / "rules.toml"
    toml.write_text('[[rules]]\nname = "errors"\nkind = "error_status"\n\n'
                    '[[rules]]\nname = "bad"\nquery = "{ duration > }"\n'
                    'aggregation = "count"\nthreshold = 0\n')
    listed = tmp_path / "rules.json"
    listed.write_text(json.dumps({"rules": [{"name": "errors", "kind": "error_status", "window_s": 300}]}))
    with app.app_context():
        assert service.load_config(str(toml), NOW) == 1  # the bad one is logged and skipped
        assert service.load_config(str(listed), NOW) == 1  # upserted by name
        [rule] = service.list_rules()
        assert (rule.name, rule.window_s, rule.source) == ("errors", 300.0, "config")
    reconfigure(app, rules_file=str(toml))
    _traffic(app, slow=0, failed=1)
    assert _run(app)["evaluated"] == 1


def test_the_worker_evaluates_and_web_processes_do_not(app):
    settings = Settings(rules_interval=7.0)
    job = next(j for j in worker.jobs(settings) if j.id == evaluation.JOB_ID)
    assert job.seconds == 7.0
    assert evaluation.JOB_ID not in {j.id for j in worker.jobs(settings, detection=False)}
    rule_id = _rule(app, kind="error_status")
    client = app.test_client()
    for path in ("/aiops/rules", f"/aiops/rules/{rule_id}", "/rules", "/aiops/alerts"):
        assert client.get(path).status_code == 200
    assert _rule_row(app, rule_id)["evaluated_at"] is None  # no request evaluated it
    assert evaluation.tick(app)["evaluated"] == 1
    with app.app_context():
        assert db.session.scalar(select(RuleAlert)) is None


def test_a_deleted_rules_queued_alert_fails_without_a_send(app, receiver):
    _traffic(app)
    rule_id = _rule(app, kind="high_latency", webhook_url=receiver.url("/h"))
    _run(app)
    with app.app_context():
        service.delete(rule_id)
        assert deliver_due(settings_of(app), now=NOW) == 1
        row = db.session.scalar(select(Notification))
        assert row.status == "failed" and "no webhook_url" in row.last_error
    assert receiver.count == 0
    assert _alerts(app)[0]["rule"] == "r"  # the alert stays listed under its rule's name
