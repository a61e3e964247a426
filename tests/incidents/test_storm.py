"""The incident-storm ceiling: forged or broken telemetry opens a bounded number of incidents."""

from __future__ import annotations

from aiops.detection.rules import Anomaly
from aiops.incidents import storm
from aiops.rca.analysis import Group
from tests.support.factories import failing_requests
from tests.support.otlp_http import PB, post


def group(endpoint: str, requests: int = 10) -> Group:
    anomaly = Anomaly("svc", endpoint, "error", 1.0, None, requests, f"{endpoint} fails")
    return Group(("svc", endpoint), [anomaly], [(("svc", endpoint), 1.0)], f"{len(endpoint):032x}")


def test_within_the_ceiling_nothing_changes():
    groups = [group(f"e{i}") for i in range(3)]
    assert storm.cap(groups, set(), 3) == (groups, 0)


def test_over_the_ceiling_the_rest_merge_into_one_storm_group():
    groups = [group(f"e{i}", requests=i) for i in range(8)]
    kept, merged = storm.cap(groups, {("svc", "e0")}, 3)
    assert merged == 4  # e0 updates an open incident; e7, e6, e5 are new and kept
    assert [g.root[1] for g in kept[:-1]] == ["e0", "e5", "e6", "e7"]
    stormy = kept[-1]
    assert stormy.root == storm.ROOT
    assert {c[0][1] for c in stormy.candidates} == {"e1", "e2", "e3", "e4"}
    title, issue = storm.describe(stormy)
    assert "incident storm" in title and "svc/e1" in issue


def test_while_a_storm_is_open_every_new_group_joins_it():
    groups = [group(f"e{i}") for i in range(5)]
    kept, merged = storm.cap(groups, {storm.ROOT, ("svc", "e0")}, 2)
    assert merged == 4 and [g.root for g in kept] == [("svc", "e0"), storm.ROOT]


def test_a_forged_batch_opens_at_most_the_ceiling_plus_one_storm(app_factory):
    app = app_factory(AIOPS_MAX_NEW_INCIDENTS=4)
    client = app.test_client()
    assert post(client, failing_requests("forged", 30).SerializeToString(), PB).status_code == 200
    summary = client.post("/aiops/analyze").get_json()
    assert len(summary["incidents_opened"]) == 5 and summary["groups_merged_into_storm"] == 26
    active = client.get("/aiops/incidents").get_json()["active_incidents"]
    storms = [i for i in active if i["root_cause"]["endpoint"] == "incident storm"]
    assert len(active) == 5 and len(storms) == 1
    assert "incident storm" in storms[0]["title"]

    more = failing_requests("forged", 30, first_id=10_000).SerializeToString()
    assert post(client, more, PB).status_code == 200
    summary = client.post("/aiops/analyze").get_json()
    assert summary["incidents_opened"] == []  # the storm is open: new roots join it
    assert summary["groups_merged_into_storm"] == 26
    assert len(client.get("/aiops/incidents").get_json()["active_incidents"]) == 5
