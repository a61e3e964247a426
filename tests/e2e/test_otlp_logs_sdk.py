"""The real OpenTelemetry SDK's OTLPLogExporter sends log records, with the trace and span of the
span they were logged in, to a live gunicorn server; GET /aiops/logs gives them back."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tests.e2e.helpers import running

pytestmark = pytest.mark.e2e

RECORDS = 600  # more than one exporter batch (512)


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.NoCompression])
def test_sdk_log_exporter_round_trip(db_url, tmp_path, compression):
    env = {"AIOPS_DATABASE_URL": db_url, "AIOPS_API_TOKEN": "", "AIOPS_FLUSH_INTERVAL": "0.1"}
    with running(tmp_path, env, workers=2, worker_processes=0) as server:
        resource = Resource.create({"service.name": "orders", "k8s.pod.name": "orders-7d9f"})
        provider = LoggerProvider(resource=resource)
        exporter = OTLPLogExporter(endpoint=server.url + "/v1/logs", compression=compression)
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        logger = logging.getLogger(f"e2e.orders.{compression.value}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(LoggingHandler(logger_provider=provider))
        tracer = TracerProvider(resource=resource).get_tracer("e2e")
        traces = {}
        try:
            for i in range(RECORDS):
                with tracer.start_as_current_span("place-order") as span:
                    if i % 100 == 0:
                        try:
                            raise ValueError(f"stock for item {i} is negative")
                        except ValueError:
                            logger.exception("order %d failed", i)
                    else:
                        logger.info("order %d placed", i)
                    traces[i] = format(span.get_span_context().trace_id, "032x")
            assert provider.force_flush(30_000)
        finally:
            provider.shutdown()

        page = server.get("/aiops/logs", params={"service": "orders", "limit": 1000}).json()
        assert len(page["logs"]) == RECORDS and page["next"] is None
        by_body = {row["body"]: row for row in page["logs"]}
        for i in (1, 2, 599):
            assert by_body[f"order {i} placed"]["trace_id"] == traces[i]
        errors = server.get("/aiops/logs", params={"service": "orders", "severity": "error"}).json()["logs"]
        expected = sorted(f"order {i} failed" for i in range(0, RECORDS, 100))
        assert sorted(row["body"] for row in errors) == expected
        failed = errors[0]
        assert failed["attributes"]["exception.type"] == "ValueError"
        assert failed["span_id"] and failed["trace_id"] in traces.values()
        one = server.get("/aiops/logs", params={"trace_id": traces[300]}).json()["logs"]
        assert [row["body"] for row in one] == ["order 300 failed"]
