"""Healthy traffic raises nothing: the demo endpoints' natural jitter is not an incident."""

from __future__ import annotations

import pytest

from simulation import traffic
from tests.e2e import helpers as h

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("recorder", ["lean", "otel"])
def test_steady_traffic_raises_no_incident(tmp_path, recorder):
    env = h.shop_env(h.sqlite_url(tmp_path), AIOPS_RECORDER=recorder)
    with h.running(tmp_path, env) as server:
        h.warm_up(server)
        for _ in range(4):
            # Steady checkouts at a modest rate; each endpoint sleeps a random
            # amount per request, so every window's mean differs a little.
            tally = traffic.run(server.url, rate=20, duration=1.5, threads=4, quiet=True)
            assert set(tally) == {"200"}, tally
            summary = h.analyze(server)
            assert summary["spans"] >= 50, summary  # the cycle really judged this traffic
            assert summary["anomalies"] == [], summary
            assert summary["incidents_opened"] == [], summary

        data = h.incidents(server)
        assert data == {"active_incidents": [], "resolved_incidents": [], "next": None}, data
        # The detector was armed the whole time: every endpoint has a ready baseline.
        current = h.metrics(server)
        for name in h.DEMO_ENDPOINTS:
            m = current[name]
            assert m["baseline_latency_ms"] is not None and m["baseline_latency_ms"] > 0, m
            assert m["error_rate"] == 0.0 and m["status_distribution"] == {"200": m["request_count"]}, m
