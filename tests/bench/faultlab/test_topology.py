"""The fault lab's topology file: the shipped ones load, bad ones fail with a message that says where."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faultlab import faults
from bench.faultlab import topology as topo

TOPOLOGIES = Path(__file__).resolve().parents[3] / "bench" / "faultlab" / "topologies"


def small(**changes) -> dict:
    """A valid three-service document; ``changes`` replace whole services by name."""
    services = {
        "web": {"name": "web", "endpoint": [{"name": "home", "share": 1, "calls": [{"to": "api.list"}]}]},
        "api": {"name": "api", "endpoint": [{"name": "list", "work_ms": 3,
                                             "calls": [{"to": "db.query", "repeat": 2, "p": 0.5}]}]},
        "db": {"name": "db", "endpoint": [{"name": "query"}]},
    }
    services.update(changes)
    return {"name": "small", "service": list(services.values())}


@pytest.mark.parametrize("path", sorted(TOPOLOGIES.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_topologies_load_and_every_service_gets_traffic(path):
    t = topo.load(path)
    assert len(t.services) >= 8
    assert {s for s, _ in t.reachable()} == set(t.services)
    assert faults.plan(t, list(faults.TYPES), seed=1)


def test_parse_reads_calls_work_and_entries():
    t = topo.parse(small())
    assert t.entries() == [("web", "home", 1.0)]
    call = t.services["api"].endpoints["list"].calls[0]
    assert (call.service, call.endpoint, call.repeat, call.p) == ("db", "query", 2, 0.5)
    assert t.services["api"].endpoints["list"].work_ms == 3.0
    assert [t.height(s) for s in ("web", "api", "db")] == [2, 1, 0]
    assert t.timeout_s("web") > t.timeout_s("api") > t.timeout_s("db")
    assert t.callers("db") == {"api"}


@pytest.mark.parametrize("change, message", [
    ({"api": {"name": "api", "endpoint": [{"name": "list", "calls": [{"to": "cache.get"}]}]}},
     "calls unknown service 'cache'"),
    ({"api": {"name": "api", "endpoint": [{"name": "list", "calls": [{"to": "db.nope"}]}]}},
     "calls unknown endpoint db.nope"),
    ({"db": {"name": "db", "endpoint": [{"name": "query", "calls": [{"to": "web.home"}]}]}},
     "cycle: web -> api -> db -> web"),
    ({"db": {"name": "db", "endpoint": [{"name": "query", "wrok_ms": 3}]}}, "unknown key(s) wrok_ms"),
    ({"db": {"name": "db", "endpoint": [{"name": "query", "work_ms": -1}]}}, "work_ms must be a number"),
    ({"api": {"name": "api", "endpoint": [{"name": "list", "calls": [{"to": "db.query", "repeat": 0}]}]}},
     "repeat of db.query"),
    ({"api": {"name": "api", "endpoint": [{"name": "list", "calls": [{"to": "api.list"}]}]}},
     "calls its own service"),
    ({"db": {"name": "Db!", "endpoint": [{"name": "query"}]}}, "service name 'Db!'"),
    ({"web": {"name": "web", "endpoint": [{"name": "home", "calls": [{"to": "api.list"}]}]}},
     "no entry endpoint"),
])
def test_bad_topologies_are_refused_with_a_clear_message(change, message):
    with pytest.raises(topo.TopologyError) as error:
        topo.parse(small(**change))
    assert message in str(error.value)


def test_load_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[[service]]\nname = 'a'\n")
    with pytest.raises(topo.TopologyError, match=r"bad\.toml: needs at least two"):
        topo.load(bad)


def test_fault_plan_is_deterministic_never_hits_an_entry_and_rotates_targets():
    t = topo.load(TOPOLOGIES / "shop.toml")
    first = faults.plan(t, list(faults.TYPES), seed=7, rounds=2)
    assert [f.record() for f in first] == [f.record() for f in faults.plan(t, list(faults.TYPES), 7, 2)]
    assert all(f.target not in t.entry_services() for f in first)
    targets = [f.target for f in first]
    assert all(a != b for a, b in zip(targets, targets[1:], strict=False))
    assert len(set(targets)) == len(t.services) - 1  # 16 faults over the 9 non-entry services
    assert all(t.services[f.target].callees() for f in first if f.type == "delay-all")
    assert all(150 <= f.params["ms"] <= 800 for f in first if f.type.startswith("delay"))


def test_fault_types_parse():
    assert faults.parse_types("all") == list(faults.TYPES)
    assert faults.parse_types("cpu, down") == ["cpu", "down"]
    with pytest.raises(ValueError, match="unknown fault type"):
        faults.parse_types("cpu,meteor")


def test_targets_aim_the_faults_at_the_services_named():
    t = topo.load(TOPOLOGIES / "mesh.toml")
    planned = faults.plan(t, ["cpu", "delay-answers", "cpu", "slow"], seed=3, only=("stock", "catalog"))
    assert {f.target for f in planned} == {"catalog", "stock"}
    assert [f.target for f in planned[:2]] != [planned[0].target] * 2  # they still rotate
    with pytest.raises(ValueError, match="frontend"):
        faults.plan(t, ["cpu"], seed=1, only=("frontend",))  # an entry service is never a target


def test_the_mesh_has_a_shared_mid_tier_with_a_leaf_behind_it():
    t = topo.load(TOPOLOGIES / "mesh.toml")
    callers = {s for s, svc in t.services.items() for c in svc.callees() if c == "catalog"}
    assert callers == {"recommend", "checkout"}
    assert t.services["catalog"].callees() == ["stock"]


def test_a_best_effort_call_is_read_and_checked():
    doc = small(api={"name": "api", "endpoint": [{"name": "list", "calls": [
        {"to": "db.query", "best_effort": True}]}]})
    assert topo.parse(doc).services["api"].endpoints["list"].calls[0].best_effort
    assert not topo.parse(small()).services["api"].endpoints["list"].calls[0].best_effort
    doc["service"][1]["endpoint"][0]["calls"][0]["best_effort"] = "yes"
    with pytest.raises(topo.TopologyError, match="best_effort of db.query must be true or false"):
        topo.parse(doc)
