"""``/simulate/degrade`` and ``/simulate/stop`` through the app: validated, stored, cleared, and what
the shop does under them (a growing latency; a refused call)."""

from __future__ import annotations

import pytest

from simulation import faults
from tests.conftest import sqlite_only

BAD = [
    ("/simulate/degrade", "'endpoint'"),
    ("/simulate/degrade?endpoint=nope", "'nope'"),
    ("/simulate/degrade?endpoint=payment&factor=0.5", "'factor'"),
    ("/simulate/degrade?endpoint=payment&factor=101", "'factor'"),
    ("/simulate/degrade?endpoint=payment&factor=nan", "'factor'"),
    ("/simulate/degrade?endpoint=payment&factor=", "'factor'"),
    ("/simulate/degrade?endpoint=payment&ramp_s=-1", "'ramp_s'"),
    ("/simulate/degrade?endpoint=payment&ramp_s=86401", "'ramp_s'"),
    ("/simulate/degrade?endpoint=payment&ramp_s=soon", "'ramp_s'"),
    ("/simulate/degrade?endpoint=payment&ramp=600", "'ramp'"),
    ("/simulate/stop", "'endpoint'"),
    ("/simulate/stop?endpoint=checkout", "'endpoint'"),  # nothing calls it over the network
    ("/simulate/stop?endpoint=nope", "'nope'"),
    ("/simulate/stop?endpoint=payment&rate=1", "'rate'"),
]


def stored(client) -> list[dict]:
    r = client.get("/simulate/faults")
    assert r.status_code == 200
    return r.get_json()["faults"]


@pytest.mark.parametrize(("path", "named"), BAD)
@sqlite_only
def test_bad_degrade_and_stop_are_a_400_naming_the_field(client, path, named):
    r = client.post(path)
    assert r.status_code == 400 and r.is_json, r.data[:200]
    body = r.get_json()
    assert body["error"] == "Bad Request" and named in body["message"], body
    assert stored(client) == []


def test_degrade_and_stop_are_stored_and_cleared(client):
    r = client.post("/simulate/degrade?endpoint=payment&factor=3&ramp_s=60")
    assert r.status_code == 200, r.get_json()
    injected = r.get_json()["injected"]
    assert (injected["degrade_factor"], injected["degrade_ramp_s"]) == (3.0, 60.0)
    assert injected["degrade_since"].endswith("Z")
    defaults = client.post("/simulate/degrade", json={"endpoint": "checkout"}).get_json()["injected"]
    assert (defaults["degrade_factor"], defaults["degrade_ramp_s"]) == (2.0, 600.0)
    assert client.post("/simulate/stop?endpoint=inventory").get_json()["injected"]["stopped"] is True
    assert [f["endpoint"] for f in stored(client)] == ["checkout", "inventory", "payment"]
    assert client.post("/simulate/clear").get_json() == {"cleared": 3}
    assert stored(client) == []


def test_the_degradation_grows_linearly_to_its_factor():
    fault = {"degrade_factor": 3.0, "degrade_ramp_s": 100.0, "degrade_since_epoch": 1000.0}
    assert faults.degrade_factor(fault, 1000.0) == 1.0
    assert faults.degrade_factor(fault, 1050.0) == 2.0
    assert faults.degrade_factor(fault, 5000.0) == 3.0
    assert faults.degrade_factor({**fault, "degrade_ramp_s": 0.0}, 1000.0) == 3.0
    assert faults.degrade_factor(None, 1000.0) == 1.0


def test_the_routes_need_the_token(app_factory):
    app = app_factory(AIOPS_API_TOKEN="s3cret")
    with app.test_client() as c:
        for path in ("/simulate/degrade?endpoint=payment", "/simulate/stop?endpoint=payment"):
            assert c.post(path).status_code == 401
            assert c.post(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
