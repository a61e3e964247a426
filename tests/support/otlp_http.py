"""OTLP/HTTP against the app's test client: encode a request, post it, decode the answer, read back.

The requests themselves are built by :mod:`tests.support.factories`.
"""

from __future__ import annotations

import gzip
import json

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sqlalchemy import select

from telemetry import otlp

PB, JS = otlp.PROTOBUF, otlp.JSON


def encoded(request: ExportTraceServiceRequest, content_type: str) -> bytes:
    if content_type == PB:
        return request.SerializeToString()
    return json.dumps(otlp.to_json_dict(request)).encode()


def post(client, body: bytes, content_type: str | None, gzipped: bool = False, path: str = "/v1/traces",
         **headers):
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post(path, data=body, headers=headers)


def decode(response, message_type):
    """Decode a response body in the encoding its Content-Type names."""
    msg = message_type()
    if response.mimetype == JS:
        json_format.Parse(response.data, msg)
    else:
        assert response.mimetype == PB
        msg.ParseFromString(response.data)
    return msg


def stored(app) -> list:
    """OTLP spans in the store (the ingest requests themselves are recorded as 'aiops')."""
    from telemetry.db import db
    from telemetry.models import Span

    with app.app_context():
        rows = db.session.scalars(select(Span).where(Span.service != "aiops").order_by(Span.id)).all()
        db.session.remove()
        return rows


def decoded_items(message) -> int:
    """Messages in a decoded request, as the wire scan counts them (a span's small Status aside)."""
    count = 0
    for fd, value in message.ListFields():
        if fd.message_type is None or fd.message_type.name == "Status":
            continue
        for item in (value if not hasattr(value, "ListFields") else [value]):
            count += 1 + decoded_items(item)
    return count
