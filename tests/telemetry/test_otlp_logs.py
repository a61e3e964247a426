"""OTLP/HTTP log ingest: the pure mapping (telemetry.otlp_logs) and ``POST /v1/logs``."""

from __future__ import annotations

import json
import random
import zlib

import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from sqlalchemy import select

from telemetry import otlp, otlp_limits, otlp_logs
from telemetry.otlp.mapping import clean
from tests.conftest import make_app
from tests.support.factories import LOG_T0 as T0
from tests.support.factories import LOG_TRACE as TRACE
from tests.support.factories import any_value, attributes
from tests.support.factories import good_logs_request as good_request
from tests.support.factories import log_record as make_record
from tests.support.factories import logs_request as make_request
from tests.support.otlp_http import decode, decoded_items, encoded
from tests.support.otlp_http import post as trace_post

PB, JS = otlp.PROTOBUF, otlp.JSON


# -- mapping ------------------------------------------------------------------------


def test_a_record_becomes_a_row():
    record = make_record(attrs={"exception.type": "ValueError", "exception.message": "bad",
                                "http.url": "https://x/secret", "k8s.pod.name": "orders-1"})
    [row] = otlp_logs.to_log_rows(make_request({"orders": [record]})).rows
    when, service, number, text, body, trace_id, span_id, attrs = row
    assert (service, number, text, body, trace_id, span_id) == (
        "orders", 17, "ERROR", "order failed", TRACE, "0000000000000001")
    assert when == pytest.approx((T0 + 1) / 1e9)
    assert json.loads(attrs) == {"exception.type": "ValueError", "exception.message": "bad",
                                 "k8s.pod.name": "orders-1"}


def test_observed_time_stands_in_and_no_ids_is_fine():
    record = make_record(time_ns=None, observed_ns=T0, trace=None, severity=0, text="notice")
    [row] = otlp_logs.to_log_rows(make_request({"a": [record]})).rows
    assert row[0] == pytest.approx(T0 / 1e9) and row[5:7] == (None, None) and row[2:4] == (0, "notice")


def test_bodies_of_other_kinds_are_text_and_cut():
    kv = common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=attributes({"a": 1, "b": "x"})))
    assert otlp_logs.body_text(kv) == '{"a":1,"b":"x"}'
    assert otlp_logs.body_text(common_pb2.AnyValue(bytes_value=b"\x01\x02")) == "0102"
    assert otlp_logs.body_text(common_pb2.AnyValue(string_value="é" * 100 + "\x00"), 10) == "é" * 10
    assert otlp_logs.body_text(common_pb2.AnyValue()) is None


@pytest.mark.parametrize("kwargs, reason", [
    ({"time_ns": None}, "missing time"),
    ({"trace_id": b"\x01" * 5}, "invalid trace_id"),
    ({"span": b"\x01" * 3}, "invalid span_id"),
])
def test_invalid_records_are_rejected_alone(kwargs, reason):
    mapped = otlp_logs.to_log_rows(make_request({"a": [make_record(**kwargs), make_record(2)]}))
    assert len(mapped.rows) == 1 and mapped.rejected == 1
    assert reason in mapped.error_message and "log record(s) rejected" in mapped.error_message


def test_live_checks_refuse_far_times_and_the_products_own_name():
    checks = otlp_logs.LogChecks(now=T0 / 1e9 + 600, own_services=frozenset({"shop"}))
    request = make_request({"shop": [make_record()],
                            "a": [make_record(time_ns=T0 - 30 * 86400 * 10**9), make_record(2)]})
    mapped = otlp_logs.to_log_rows(request, checks)
    assert len(mapped.rows) == 1 and mapped.rejected == 2


def test_severity_names_and_numbers():
    assert otlp_logs.severity_name(13) == "WARN" and otlp_logs.severity_name(0) is None
    assert otlp_logs.severity_number("warning") == 13 and otlp_logs.severity_number("nope") is None


def _row_by_the_helpers(service, record, body_max):
    """What the mapping's inlined loop must give: the helpers, one by one."""
    number = record.severity_number if 0 <= record.severity_number <= 24 else 0
    return ((record.time_unix_nano or record.observed_time_unix_nano) / 1e9, service, number,
            clean(record.severity_text, 32) or otlp_logs.severity_name(number),
            otlp_logs.body_text(record.body, body_max), otlp_logs._id(record.trace_id, 16),
            otlp_logs._id(record.span_id, 8), otlp_logs.kept_attributes(record.attributes))


def test_the_mapping_loop_is_the_helpers_record_by_record():
    rnd = random.Random(5)
    bodies = [common_pb2.AnyValue(string_value="ok"), common_pb2.AnyValue(string_value=""),
              common_pb2.AnyValue(string_value="é\x00" * 30), common_pb2.AnyValue(int_value=7),
              common_pb2.AnyValue(), common_pb2.AnyValue(bytes_value=b"\x00\xff")]
    values = ["a", "", "x" * 2000, 62, 62.0, -0.0, 0.0, True, 1, False, 0]
    keys = ["code.lineno", "code.function", "exception.type", "http.url", "k8s.pod.name"]
    ids = [b"", bytes(16), bytes(8), bytes(3), b"\x01" * 16, b"\x02" * 8, bytes(range(16))]
    records = []
    for n in range(3000):
        attrs = [common_pb2.KeyValue(key=rnd.choice(keys), value=any_value(rnd.choice(values)))
                 for _ in range(rnd.randrange(4))]
        records.append(logs_pb2.LogRecord(
            time_unix_nano=rnd.choice([0, T0 + n]), observed_time_unix_nano=rnd.choice([0, T0]),
            severity_number=rnd.choice([0, 9, 13, 17, 24]), severity_text=rnd.choice(["", "warn", "\x00"]),
            body=rnd.choice(bodies), trace_id=rnd.choice(ids), span_id=rnd.choice(ids), attributes=attrs))
    mapped = otlp_logs.to_log_rows(make_request({"orders": records}), body_max=100)
    valid = [r for r in records if (r.time_unix_nano or r.observed_time_unix_nano)
             and otlp_logs._id(r.trace_id, 16) is not False and otlp_logs._id(r.span_id, 8) is not False]
    assert mapped.rejected == len(records) - len(valid) > 0
    expected = [_row_by_the_helpers("orders", r, 100) for r in valid]
    assert [repr(row) for row in mapped.rows] == [repr(row) for row in expected]  # repr: -0.0, True


def test_json_hex_ids_are_read():
    doc = otlp.to_json_dict(good_request(1))
    assert doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] == TRACE
    message = otlp.parse_json(json.dumps(doc).encode(), message_type=ExportLogsServiceRequest)
    assert otlp_logs.to_log_rows(message).rows[0][5] == TRACE


def test_the_scan_counts_what_decoding_builds_for_every_kind_of_body():
    kv = common_pb2.KeyValueList(values=attributes({"a": 1, "b": "x" * 300}))
    bodies = [common_pb2.AnyValue(string_value="x" * n) for n in (0, 1, 127, 128, 5000)] + [
        common_pb2.AnyValue(), common_pb2.AnyValue(int_value=-1), common_pb2.AnyValue(double_value=0.5),
        common_pb2.AnyValue(bool_value=True), common_pb2.AnyValue(bytes_value=b"\x00" * 200),
        common_pb2.AnyValue(kvlist_value=kv),
        common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[common_pb2.AnyValue(int_value=2)]))]
    records = [make_record(n, body=body, attrs={"k": "v" * n, "n": n, "f": 0.5})
               for n, body in enumerate(bodies)]
    request = make_request({"orders": records})
    assert otlp_limits.scan_protobuf(request.SerializeToString(), otlp_limits.Limits(10**6, 10**6),
                                     otlp_limits.LOGS) == decoded_items(request)


def test_record_limit_is_checked_before_decoding():
    body = make_request({"a": [logs_pb2.LogRecord() for _ in range(11)]}).SerializeToString()
    with pytest.raises(otlp.PayloadTooLarge, match="AIOPS_OTLP_MAX_LOG_RECORDS"):
        otlp_limits.scan_protobuf(body, otlp_limits.Limits(10, 10**6), otlp_limits.LOGS)
    with pytest.raises(otlp.PayloadTooLarge, match="AIOPS_OTLP_MAX_ITEMS"):
        otlp_limits.scan_protobuf(good_request(3).SerializeToString(), otlp_limits.Limits(10, 5),
                                  otlp_limits.LOGS)


def test_invalid_utf8_is_repaired_not_fatal():
    body = good_request(1).SerializeToString().replace(b"order failed", b"order \xff\xfeiled")
    message = otlp.parse(body, PB, ExportLogsServiceRequest)
    assert otlp_logs.to_log_rows(message).rows[0][4] == "order \ufffd\ufffdiled"


# -- POST /v1/logs --------------------------------------------------------------------


def stored(app) -> list:
    from telemetry.db import db
    from telemetry.models import LogRecord

    with app.app_context():
        rows = db.session.scalars(select(LogRecord).order_by(LogRecord.id)).all()
        db.session.remove()
        return rows


def post(client, body: bytes, content_type: str | None, gzipped: bool = False, **headers):
    return trace_post(client, body, content_type, gzipped, path="/v1/logs", **headers)


@pytest.mark.parametrize("content_type", [PB, JS])
@pytest.mark.parametrize("gzipped", [False, True])
def test_export_is_stored_and_answered_in_the_request_encoding(app, client, content_type, gzipped):
    r = post(client, encoded(good_request(3), content_type), content_type, gzipped=gzipped)
    assert r.status_code == 200 and r.mimetype == content_type
    assert not decode(r, ExportLogsServiceResponse).HasField("partial_success")
    rows = stored(app)
    assert [(x.service, x.severity_text, x.trace_id) for x in rows] == [("orders", "ERROR", TRACE)] * 3
    assert all(x.template_id is None for x in rows)


def test_deflate_is_accepted(app, client):
    r = client.post("/v1/logs", data=zlib.compress(good_request(2).SerializeToString()),
                    headers={"Content-Type": PB, "Content-Encoding": "deflate"})
    assert r.status_code == 200 and len(stored(app)) == 2


@pytest.mark.parametrize("content_type", [PB, JS])
def test_partial_success_stores_the_valid_records(app, client, content_type):
    request = make_request({"a": [make_record(1), make_record(2, time_ns=None)]})
    r = post(client, encoded(request, content_type), content_type)
    assert r.status_code == 200
    partial = decode(r, ExportLogsServiceResponse).partial_success
    assert partial.rejected_log_records == 1 and "missing time" in partial.error_message
    assert len(stored(app)) == 1


MALFORMED = [
    ("truncated protobuf", good_request(2).SerializeToString()[:-3], PB, {}, 400),
    ("not JSON", b"{nope", JS, {}, 400),
    ("JSON array", b"[]", JS, {}, 400),
    ("a string where a message belongs", b'{"resourceLogs": ["x"]}', JS, {}, 400),
    ("wrong type", b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": "loud"}]}]}]}',
     JS, {}, 400),
    ("empty body", b"", PB, {}, 400),
    ("every record invalid", make_request({"a": [make_record(time_ns=None)]}).SerializeToString(), PB, {},
     400),
    ("bad gzip", b"\x1f\x8bnot gzip", PB, {"Content-Encoding": "gzip"}, 400),
    ("unknown coding", good_request(1).SerializeToString(), PB, {"Content-Encoding": "br"}, 415),
    ("form content type", b"a=b", "application/x-www-form-urlencoded", {}, 415),
    ("no content type", good_request(1).SerializeToString(), None, {}, 415),
]


def test_every_malformed_input_gets_a_4xx_and_stores_nothing(app, client):
    for label, body, content_type, headers, expected in MALFORMED:
        r = post(client, body, content_type, **headers)
        assert r.status_code == expected, (label, r.status_code, r.data)
        if content_type in (PB, JS):
            assert r.mimetype == content_type, label
            assert decode(r, status_pb2.Status).code != code_pb2.OK, label
        else:
            assert r.get_json()["error"] == "Unsupported Media Type", label
        assert stored(app) == [], label
    assert post(client, good_request(4).SerializeToString(), PB, gzipped=True).status_code == 200
    assert len(stored(app)) == 4


def test_limits_give_413_and_store_nothing(db_url):
    app = make_app(db_url, AIOPS_OTLP_MAX_BYTES=64 * 1024, AIOPS_OTLP_MAX_LOG_RECORDS=10)
    client = app.test_client()
    too_many = make_request({"a": [make_record(i + 1) for i in range(11)]})
    for content_type in (PB, JS):
        r = post(client, encoded(too_many, content_type), content_type)
        assert r.status_code == 413 and "AIOPS_OTLP_MAX_LOG_RECORDS" in decode(r, status_pb2.Status).message
    big = make_request({"a": [make_record(body="x" * 70 * 1024)]}).SerializeToString()
    r = post(client, big, PB, gzipped=True)
    assert r.status_code == 413 and "AIOPS_OTLP_MAX_BYTES" in decode(r, status_pb2.Status).message
    assert stored(app) == []
    from tests.conftest import dispose_app

    dispose_app(app)


def test_long_bodies_are_cut_to_the_setting(db_url):
    app = make_app(db_url, AIOPS_LOG_BODY_MAX=100)
    r = post(app.test_client(), make_request({"a": [make_record(body="y" * 5000)]}).SerializeToString(), PB)
    assert r.status_code == 200 and stored(app)[0].body == "y" * 100
    from tests.conftest import dispose_app

    dispose_app(app)


def test_the_ingest_token_is_required_when_set(db_url):
    app = make_app(db_url, AIOPS_INGEST_TOKEN="s3cret")
    client = app.test_client()
    assert post(client, good_request(1).SerializeToString(), PB).status_code == 401
    assert post(client, good_request(1).SerializeToString(), PB,
                Authorization="Bearer s3cret").status_code == 200
    assert len(stored(app)) == 1
    from tests.conftest import dispose_app

    dispose_app(app)


def test_store_failure_is_a_retryable_503(app, client, monkeypatch):
    import telemetry.ingest

    def broken(engine, rows):
        raise RuntimeError("database is down")

    monkeypatch.setattr(telemetry.ingest, "insert_logs", broken)
    r = post(client, good_request(2).SerializeToString(), PB)
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert "log store" in decode(r, status_pb2.Status).message
    monkeypatch.undo()
    assert post(client, good_request(2).SerializeToString(), PB).status_code == 200
    # The product's own error line about the 503 may be stored too (its logging bridge): not ours.
    assert len([r for r in stored(app) if r.service == "orders"]) == 2


def test_inflight_budget_exhausted_is_a_503(app, client):
    budget = app.extensions["aiops_otlp_budget"]
    assert budget.take(budget.limit)
    try:
        r = post(client, good_request(2).SerializeToString(), PB)
        assert r.status_code == 503 and r.headers["Retry-After"]
    finally:
        budget.give(budget.limit)
    assert stored(app) == []
