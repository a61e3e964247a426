"""SLO alerts in the detection cycle: an error spike opens one incident (the baseline's, with the SLO
alert as evidence), a slow burn the baselines accept opens an ``slo`` incident, and both notify."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from aiops.jobs.cycle import run_claimed
from aiops.settings import settings_of
from aiops.store.models import Incident, Notification
from telemetry.db import db
from tests.support.factories import insert_spans, span

SLO = {"name": "payment availability", "service": "shop", "endpoint": "payment", "sli": "availability",
       "objective": 99.9}


def _traffic(app, start: float, n: int, failing: int) -> None:
    insert_spans(app, [span("payment", start_time=start + i * 30 / n,
                            status_code=500 if i < failing else 200) for i in range(n)])


def _cycle(app, now: float) -> dict:
    with app.app_context():
        return run_claimed(settings_of(app), force=True, now=now)


def _count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _warm(app, t: float, cycles: int = 3) -> float:
    for _ in range(cycles):
        _traffic(app, t, 60, 0)
        t += 30
        summary = _cycle(app, t)
        assert summary["anomalies"] == [] and summary["slo_alerts"] == [], summary
    return t


def test_an_error_spike_opens_one_incident_and_notifies(app_factory):
    app = app_factory(AIOPS_WEBHOOK_URL="http://127.0.0.1:9/hook")
    client = app.test_client()
    slo_id = client.post("/aiops/slos", json=SLO).get_json()["id"]
    t = _warm(app, time.time() - 3600)
    _traffic(app, t, 60, 60)  # a total outage
    first = _cycle(app, t + 30)
    assert {a["type"] for a in first["anomalies"]} == {"error"}
    assert len(first["slo_alerts"]) == 1 and "payment availability" in first["slo_alerts"][0]
    assert len(first["incidents_opened"]) == 1  # the SLO alert joined the baseline's incident
    [incident_id] = first["incidents_opened"]
    _traffic(app, t + 30, 60, 60)
    second = _cycle(app, t + 60)
    assert second["incidents_opened"] == [] and second["incidents_updated"] == [incident_id]
    assert _count(app, Incident) == 1
    incident = client.get(f"/aiops/incidents/{incident_id}").get_json()
    assert {a["type"] for a in incident["anomalies"]} == {"error", "slo"}
    assert incident["severity"] in ("high", "critical")
    triggers = Notification.incident_id == incident_id, Notification.event == "trigger"
    assert _count(app, Notification, *triggers) == 1
    slo = client.get(f"/aiops/slos/{slo_id}").get_json()
    assert slo["status"] == "page" and slo["burn_rates"]["5m"] > 14.4 and slo["budget_remaining"] < 0


def test_a_slow_burn_the_baselines_accept_opens_an_slo_incident(app_factory):
    """2 % errors against 99.9 %: a burn rate of 20, under the baselines' error threshold."""
    app = app_factory(AIOPS_WEBHOOK_URL="http://127.0.0.1:9/hook")
    client = app.test_client()
    client.post("/aiops/slos", json={**SLO, "endpoint": None, "name": "shop availability"})
    t = _warm(app, time.time() - 3600)
    opened = []
    for _ in range(2):
        _traffic(app, t, 100, 2)
        t += 30
        summary = _cycle(app, t)
        assert summary["anomalies"] == []
        opened += summary["incidents_opened"]
    assert len(opened) == 1
    incident = client.get(f"/aiops/incidents/{opened[0]}").get_json()
    assert incident["report"]["kind"] == "slo"
    assert (incident["root_cause"]["service"], incident["root_cause"]["endpoint"]) == ("shop", None)
    assert "burning its error budget" in incident["title"]
    assert _count(app, Notification, Notification.incident_id == opened[0], Notification.event == "trigger")
    # Recovered: the short windows clear and the page stops; the budget the burn spent keeps a ticket
    # open (3 d and 6 h both still burn at least 1x), as the workbook's rules say.
    for _ in range(12):
        _traffic(app, t, 100, 0)
        t += 30
        summary = _cycle(app, t)
    slo = client.get("/aiops/slos").get_json()["slos"][0]
    assert slo["status"] == "ticket" and slo["burn_rates"]["5m"] == 0.0
    assert [a.endswith("ticket)") for a in summary["slo_alerts"]] == [True]
