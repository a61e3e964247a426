"""A three-service system traced with the real OpenTelemetry Python SDK, as a separate process.

``frontend`` (``GET /checkout``) calls ``orders`` (``POST /orders``), which
calls ``db-service`` (``GET /rows``): SERVER and CLIENT spans with HTTP
attributes, the trace context carried between "services" in W3C headers by
the SDK's propagator, each service with its own TracerProvider, resource and
OTLP exporter, exactly like three processes would be. Span times are set
explicitly (no sleeping): ``db-service`` takes 20 ms, or 400 ms with
``--fault slow``; with ``--fault error`` it fails (status ERROR, HTTP 500 and
an exception event) and the error propagates up as 502s.

    python tests/e2e/otlp_three_services.py URL --requests 30 [--fault slow|error]
        [--encoding protobuf|json] [--compression gzip|none]

``--encoding protobuf`` uses the SDK's ``OTLPSpanExporter``; ``json`` encodes
the same batches with the SDK's encoder and posts them as OTLP/JSON (hex ids,
integer enums). Exits non-zero if any export failed; prints a JSON summary.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import sys
import time

import requests
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

MS = 1_000_000
PROPAGATOR = TraceContextTextMapPropagator()


class JsonExporter(SpanExporter):
    """OTLP/JSON over HTTP with ``requests``: the SDK's encoder, then proto3 JSON with hex ids."""

    def __init__(self, endpoint: str, gzipped: bool):
        self.endpoint = endpoint
        self.gzipped = gzipped
        self.session = requests.Session()

    def export(self, spans) -> SpanExportResult:
        doc = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=True)
        for rs in doc.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in span:
                            span[key] = base64.b64decode(span[key]).hex()
        body = json.dumps(doc).encode()
        headers = {"Content-Type": "application/json"}
        if self.gzipped:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        response = self.session.post(self.endpoint, data=body, headers=headers, timeout=30)
        return SpanExportResult.SUCCESS if response.status_code == 200 else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.session.close()


class Checked(SpanExporter):
    """Counts failed exports, so the process can exit non-zero (the SDK only logs them)."""

    failures = 0
    exported = 0

    def __init__(self, inner: SpanExporter):
        self.inner = inner

    def export(self, spans) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            Checked.exported += len(spans)
        else:
            Checked.failures += 1
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()


def provider(service: str, args) -> TracerProvider:
    endpoint = args.url.rstrip("/") + "/v1/traces"
    gzipped = args.compression == "gzip"
    if args.encoding == "json":
        exporter: SpanExporter = JsonExporter(endpoint, gzipped)
    else:
        exporter = OTLPSpanExporter(
            endpoint=endpoint, timeout=30,
            compression=Compression.Gzip if gzipped else Compression.NoCompression,
        )
    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(BatchSpanProcessor(Checked(exporter), max_export_batch_size=64,
                                             schedule_delay_millis=200))
    return tp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--fault", choices=["none", "slow", "error"], default="none")
    parser.add_argument("--encoding", choices=["protobuf", "json"], default="protobuf")
    parser.add_argument("--compression", choices=["gzip", "none"], default="none")
    args = parser.parse_args(argv)

    providers = {name: provider(name, args) for name in ("frontend", "orders", "db-service")}
    frontend = providers["frontend"].get_tracer("shop.frontend")
    orders = providers["orders"].get_tracer("shop.orders")
    db = providers["db-service"].get_tracer("shop.db")

    base = time.time_ns() - args.requests * 60 * MS  # the batch happened over the last few seconds
    for i in range(args.requests):
        t = base + i * 60 * MS
        db_ms = 400 if args.fault == "slow" else 20 + (i % 5) - 2
        failed = args.fault == "error"

        fe = frontend.start_span("GET /checkout", kind=SpanKind.SERVER, start_time=t, attributes={
            "http.request.method": "GET", "http.route": "/checkout", "url.path": "/checkout"})
        fe_call = frontend.start_span("POST", context=set_span_in_context(fe), kind=SpanKind.CLIENT,
                                      start_time=t + 2 * MS, attributes={
                                          "http.request.method": "POST", "server.address": "orders",
                                          "server.port": 8080, "peer.service": "orders"})
        headers: dict[str, str] = {}
        PROPAGATOR.inject(headers, context=set_span_in_context(fe_call))

        od = orders.start_span("POST /orders", context=PROPAGATOR.extract(headers), kind=SpanKind.SERVER,
                               start_time=t + 3 * MS, attributes={
                                   "http.request.method": "POST", "http.route": "/orders"})
        od_call = orders.start_span("GET", context=set_span_in_context(od), kind=SpanKind.CLIENT,
                                    start_time=t + 5 * MS, attributes={
                                        "http.request.method": "GET", "server.address": "db-service",
                                        "server.port": 8080})
        headers = {}
        PROPAGATOR.inject(headers, context=set_span_in_context(od_call))

        leaf = db.start_span("GET /rows", context=PROPAGATOR.extract(headers), kind=SpanKind.SERVER,
                             start_time=t + 6 * MS, attributes={
                                 "http.request.method": "GET", "http.route": "/rows"})
        end = t + 6 * MS + db_ms * MS
        if failed:
            try:
                raise ConnectionError("db-service: connection pool exhausted")
            except ConnectionError as exc:
                leaf.record_exception(exc)
            leaf.set_status(Status(StatusCode.ERROR, "connection pool exhausted"))
        codes = (500, 502) if failed else (200, 200)
        leaf.set_attribute("http.response.status_code", codes[0])
        leaf.end(end_time=end)
        od_call.set_attribute("http.response.status_code", codes[0])
        if failed:
            od_call.set_status(Status(StatusCode.ERROR))
        od_call.end(end_time=end + 1 * MS)
        od.set_attribute("http.response.status_code", codes[1])
        if failed:
            od.set_status(Status(StatusCode.ERROR))
        od.end(end_time=end + 3 * MS)
        fe_call.set_attribute("http.response.status_code", codes[1])
        if failed:
            fe_call.set_status(Status(StatusCode.ERROR))
        fe_call.end(end_time=end + 4 * MS)
        fe.set_attribute("http.response.status_code", codes[1])
        if failed:
            fe.set_status(Status(StatusCode.ERROR))
        fe.end(end_time=end + 6 * MS)

    for tp in providers.values():
        tp.shutdown()  # flushes the batch processor through the exporter
    print(json.dumps({"spans": Checked.exported, "failed_exports": Checked.failures}))
    return 1 if Checked.failures else 0


if __name__ == "__main__":
    sys.exit(main())
