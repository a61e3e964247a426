"""The lab services' runtime metrics (bench/faultlab/runtime_metrics.py): the real SDK MeterProvider
exports CPU and memory gauges to the product's POST /v1/metrics, where RCA reads them as resources."""

from __future__ import annotations

from sqlalchemy import select

from aiops.metrics.kinds import CPU, MEMORY, kind_of
from bench.faultlab.runtime_metrics import metrics_url, runtime_metrics
from telemetry.db import db
from telemetry.models import MetricPoint
from tests.support.loopback import LoopbackServer


def test_cpu_and_memory_reach_the_product(app):
    server = LoopbackServer(app)
    provider = runtime_metrics("payments", server.url + "/v1/traces", every_ms=3_600_000)
    try:
        sum(i * i for i in range(200_000))  # some CPU to show
        assert provider.force_flush(30_000)
    finally:
        provider.shutdown()
        server.stop()
    with app.app_context():
        rows = db.session.execute(select(MetricPoint.service, MetricPoint.name, MetricPoint.value)).all()
    got = {name: value for service, name, value in rows if service == "payments"}
    assert kind_of("process.cpu.utilization") == CPU and kind_of("process.memory.usage") == MEMORY
    assert 0.0 <= got["process.cpu.utilization"] <= 1.0
    assert got["process.memory.usage"] > 1_000_000
    assert metrics_url("http://127.0.0.1:5000/v1/traces") == "http://127.0.0.1:5000/v1/metrics"
