"""Reading a span's pod and deciding whether the evidence points at one (aiops.rca.pods)."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import pytest

from aiops.rca import pods


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"pod": "api-1"}, "api-1"),
        ({"attributes": {"k8s.pod.name": "api-2", "host.name": "node-1"}}, "api-2"),
        ({"attributes": json.dumps({"service.instance.id": "i-9", "host.name": "node-1"})}, "i-9"),
        ({"attributes": {"host.name": "node-3"}}, "node-3"),
        ({"attributes": "{not json"}, None),
        ({"attributes": json.dumps(["k8s.pod.name", "x"])}, None),
        ({"attributes": {"k8s.pod.name": 7, "host.name": ""}}, None),
        ({"attributes": None}, None),
        ({}, None),
        ({"pod": "p" * 1000}, "p" * pods.MAX_POD),
    ],
)
def test_a_spans_pod_comes_from_its_row_or_its_resource_attributes(row, expected):
    assert pods.pod_of(SimpleNamespace(**row)) == expected


def test_the_evidence_names_a_pod_only_when_it_points_at_one_of_several():
    traffic = Counter({"a": 50, "b": 50})
    assert pods.blamed_pod(Counter({"b": 9, "a": 1}), traffic) == "b"
    assert pods.blamed_pod(Counter({"b": 6, "a": 4}), traffic) is None  # spread over both
    assert pods.blamed_pod(Counter({"b": 2}), traffic) is None  # too few spans to say
    assert pods.blamed_pod(Counter({"a": 10}), Counter({"a": 100})) is None  # one pod: the service
    assert pods.blamed_pod(Counter({"a": 10}), Counter({"a": 95, "b": 5})) is None  # a serves it all


def test_spans_read_back_from_the_store_name_their_pods(app):
    """What ingest stored (the resource's ``k8s.pod.name``, in the attributes column) reaches the
    rows detection and RCA read (``spans_after``, ``trace_spans``), so a candidate's pod can be named."""
    from telemetry import store
    from telemetry.db import db
    from tests.support.factories import make_request, make_span
    from tests.support.otlp_http import PB, post

    request = make_request({"orders": [make_span(1, name="GET /pay")]})
    request.resource_spans[0].resource.attributes.add(key="k8s.pod.name").value.string_value = "orders-7f-2"
    assert post(app.test_client(), request.SerializeToString(), PB).status_code == 200
    with app.app_context():
        rows = store.spans_after(0, 10**9)
        assert [pods.pod_of(r) for r in rows] == ["orders-7f-2"]
        traced = store.trace_spans([rows[0].trace_id])
        assert [pods.pod_of(r) for r in traced[rows[0].trace_id]] == ["orders-7f-2"]
        db.session.remove()
