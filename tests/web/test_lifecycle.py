"""Acknowledge and resolve by hand: state changes, timeline entries, clear errors."""

from __future__ import annotations

from aiops.settings import reconfigure
from tests.support.factories import add_incident


def test_acknowledge_then_resolve_records_who_and_why(app, client):
    iid = add_incident(app)
    r = client.post(f"/aiops/incidents/{iid}/acknowledge", json={"by": "alice", "comment": "looking"})
    assert r.status_code == 200 and r.json["status"] == "acknowledged"
    assert client.get("/aiops/incidents").json["active_incidents"][0]["id"] == iid
    r = client.post(f"/aiops/incidents/{iid}/resolve")
    assert r.status_code == 200 and r.json["status"] == "resolved" and r.json["resolved_at"]
    events = [(e["event"], e["by"], e["detail"]) for e in r.json["timeline"]]
    assert events == [("acknowledged", "alice", "looking"), ("resolved", "api", "")]
    body = client.get("/aiops/incidents").json
    assert body["active_incidents"] == [] and body["resolved_incidents"][0]["id"] == iid


def test_invalid_transitions_are_409_and_change_nothing(app, client):
    iid = add_incident(app, status="resolved")
    for action in ("acknowledge", "resolve"):
        r = client.post(f"/aiops/incidents/{iid}/{action}")
        assert r.status_code == 409 and r.json["error"] == "Conflict"
    assert client.get(f"/aiops/incidents/{iid}").json["timeline"] == []


def test_acknowledging_twice_is_409_and_records_once(app, client):
    iid = add_incident(app)
    assert client.post(f"/aiops/incidents/{iid}/acknowledge", json={"by": "alice"}).status_code == 200
    r = client.post(f"/aiops/incidents/{iid}/acknowledge", json={"by": "bob", "comment": "me too"})
    assert r.status_code == 409 and r.json["error"] == "Conflict"
    assert r.json["message"] == f"{iid} is already acknowledged"
    incident = client.get(f"/aiops/incidents/{iid}").json
    assert incident["status"] == "acknowledged"
    assert [(e["event"], e["by"]) for e in incident["timeline"]] == [("acknowledged", "alice")]


def test_bad_bodies_are_400_and_unknown_incident_404(app, client):
    iid = add_incident(app)
    for body in ("not json", "[1, 2]", '{"by": 5}', '{"comment": "' + "x" * 2001 + '"}'):
        r = client.post(f"/aiops/incidents/{iid}/acknowledge", data=body, content_type="application/json")
        assert r.status_code == 400, body
        assert r.json["error"] == "Bad Request"
    assert client.get(f"/aiops/incidents/{iid}").json["status"] == "open"
    assert client.post("/aiops/incidents/INC-nope/resolve").status_code == 404


def test_token_guards_transitions(app, client):
    iid = add_incident(app)
    reconfigure(app, api_token="s3cret")
    assert client.post(f"/aiops/incidents/{iid}/acknowledge").status_code == 401
    r = client.post(f"/aiops/incidents/{iid}/acknowledge", headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 200
