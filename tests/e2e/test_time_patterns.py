"""The patterns told apart by time, end to end: a slow creep (``/simulate/degrade``) is a
``degradation`` incident, an endpoint that stops answering (``/simulate/stop``) a ``traffic_drop``
incident, each within 2 cycles of the pattern being true; and steady traffic raises nothing.

The slow baselines need history (``AIOPS_SLOW_MIN_WINDOWS``): a few warm-up cycles here.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e import helpers as h

pytestmark = pytest.mark.e2e

RAMP_S = 8
WARM_UP = 4  # cycles of normal traffic: the slow baselines judge from the third
# A lower degradation floor than the default 10 ms: the demo's payment takes about 20 ms.
ENV = {"AIOPS_SLOW_MIN_WINDOWS": 3, "AIOPS_DEGRADATION_MIN_DELTA_MS": 5}


def _kind(incident: dict) -> str:
    return incident["report"]["kind"]


def test_steady_demo_traffic_raises_nothing(tmp_path):
    with h.running(tmp_path, h.shop_env(h.sqlite_url(tmp_path), **ENV)) as server:
        h.warm_up(server, rounds=WARM_UP)
        for _ in range(4):
            assert h.checkouts(server.url, 30, threads=6) == {200: 30}
            summary = h.analyze(server)
            assert summary["anomalies"] == [], summary
        # Everything silent (the traffic stopped): calm, not a traffic drop on every endpoint.
        assert h.analyze(server)["anomalies"] == []
        data = h.incidents(server)
        assert data["active_incidents"] == [] and data["resolved_incidents"] == [], data


def test_stopped_payment_is_a_traffic_drop_rooted_at_payment(tmp_path):
    with h.running(tmp_path, h.shop_env(h.sqlite_url(tmp_path), **ENV)) as server:
        h.warm_up(server, rounds=WARM_UP)
        h.inject(server, "stop", endpoint="payment")
        tally = h.checkouts(server.url, 30, threads=6)
        assert tally == {502: 30}, tally  # checkout's calls to payment are refused
        summary = h.analyze(server)
        assert len(summary["incidents_opened"]) == 1, (summary, h.describe(server))
        incident = h.only_incident(server)
        h.assert_root(incident, "payment")
        assert _kind(incident) == "traffic_drop", incident["report"]
        assert "traffic" in incident["title"], incident["title"]
        assert any(a["type"] == "traffic_drop" for a in incident["anomalies"])


def test_a_slow_creep_on_payment_is_a_degradation(tmp_path):
    """Payment grows to 3x over 8 s while cycles run every ~2 s: each step is small enough for the
    fast baseline to absorb it, so only the slow baseline sees the creep."""
    with h.running(tmp_path, h.shop_env(h.sqlite_url(tmp_path), **ENV)) as server:
        h.warm_up(server, rounds=WARM_UP)
        ramped = time.time() + RAMP_S
        h.inject(server, "degrade", endpoint="payment", factor=3, ramp_s=RAMP_S)
        found, cycles, at_full = None, 0, 0  # at_full: cycles whose traffic all ran at the full factor
        while found is None and cycles < 25:
            full = time.time() >= ramped
            assert h.checkouts(server.url, 30, threads=6) == {200: 30}
            summary = h.analyze(server)
            cycles, at_full = cycles + 1, at_full + full
            opened = h.incidents(server)["active_incidents"]
            found = opened[0] if opened else None
        assert found is not None, f"no incident after {cycles} cycles"
        assert at_full <= 2, f"found {at_full} cycles after the ramp ended"
        h.assert_root(found, "payment")
        assert _kind(found) == "degradation", (found["report"], summary)
