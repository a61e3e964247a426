"""Schemathesis against a live server, driven by the server's own ``GET /openapi.json``.

A real gunicorn on loopback with the demo on and an API token, seeded with incidents and
notifications; the schemathesis CLI runs every phase (examples, coverage, fuzzing, stateful
through the document's links) with every check: no 5xx, only documented statuses, content
types, headers and bodies as documented, schema-violating requests refused, schema-valid ones
accepted, the token enforced. Hooks (``tests/e2e/schemathesis_hooks.py``) clear each injected
fault after its call and record every status, which this test then holds against the document;
one check is left out: ``use_after_free``, since ``DELETE /aiops/silences/<id>`` expires a silence
as Alertmanager's does and the silence stays readable (state ``expired``): a GET after it answers
200 by design. (Schemathesis' per-operation check settings do not reach its stateful phase.)

Bounded: at most ``MAX_EXAMPLES`` generated cases per operation and phase, a fixed seed (a
failure reproduces), one request at a time; about 20 s per backend on a laptop.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time

import pytest
from openapi_spec_validator import validate

from aiops.rules import service as rule_service
from aiops.slos import service as slo_service
from aiops.store.declared import RuleAlert
from aiops.store.models import LogTemplate, Notification
from telemetry.db import db
from telemetry.store import insert_logs, insert_metrics, insert_spans
from tests.conftest import dispose_app, make_app
from tests.e2e import helpers as h
from tests.e2e.server import ROOT
from tests.support.factories import row_of, span
from tests.support.incident_rows import add_incidents

pytestmark = pytest.mark.e2e

TOKEN = "schemathesis-token"
MAX_EXAMPLES = 20
SEED = 20260120
RUN_TIMEOUT = 600  # seconds: a hung run fails instead of holding CI
# Statuses that refuse a schema-violating request: schemathesis' defaults, and gunicorn's 414.
REFUSALS = ("400", "401", "403", "404", "405", "406", "409", "414", "415", "422", "428", "429", "5xx")
ST = "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'st'; sys.exit(schemathesis())"


def seed(db_url: str) -> None:
    """Incidents in every state (the stateful phase follows links to their ids) and a few
    notifications, log lines, log templates and metric points, enough for a second page of each list."""
    app = make_app(db_url, AIOPS_RECORD_REQUESTS=False)
    try:
        add_incidents(app, 30)  # 20 open, 10 resolved
        # Acknowledged ones seen long ago: the newest active incident, which the links pick, is open.
        add_incidents(app, 2, start=40, status="acknowledged", last_seen=900.0)
        with app.app_context():
            for n in range(3):
                db.session.add(Notification(
                    channel="webhook", incident_id="INC-1001-1", event="trigger", dedup_key="INC-1001-1",
                    severity="high", payload={}, status="delivered", attempts=1, created_at=1000.0 + n,
                    next_attempt_at=1000.0 + n, delivered_at=1001.0 + n, last_status=200,
                ))
            db.session.commit()
            insert_logs(db.engine, [(1000.0 + n, "orders", 17, "ERROR", f"order {n} failed", None, None, None)
                                    for n in range(3)])
            insert_metrics(db.engine, [(1000.0 + n, "orders", "orders-1", None, "process.cpu.utilization",
                                        None, 0.1 * n) for n in range(3)])
            for n in range(3):  # as a cycle mines them
                db.session.add(LogTemplate(service="orders", template_id=n + 1, template=f"step {n} <NUM>",
                                           first_seen=1000.0 + n, last_seen=1001.0 + n, count=2,
                                           exception=False))
            db.session.commit()
            now = time.time()  # a recent trace for GET /api/search and the link to GET /api/traces/<id>
            # (a service no SLO covers: an SLO alert would change the incidents the run reads)
            seeded = [span("checkout", 120.0, service="seeded", start_time=now - 60 + n) for n in range(2)]
            insert_spans(db.engine, [row_of(s) for s in seeded])  # two traces: /aiops/traces has a next page
            rule = rule_service.create({"name": "seeded", "kind": "error_status"}, 1000.0)
            for n in range(2):  # two alerts: GET /aiops/alerts has a next page
                db.session.add(RuleAlert(
                    rule_id=rule.id, rule=rule.name, anomaly_type="error_status", fingerprint=f"{n:064x}",
                    trace_id=seeded[n].trace_id, span_name="checkout", service="seeded", duration_ms=120.0,
                    error_message="boom", aggregation="count", value=1.0, threshold=0.0, affected_traces=1,
                    total_traces=2, trace_ids=[seeded[n].trace_id], severity="high", notification="off",
                    first_seen=1000.0 + n, last_seen=1000.0 + n, seen=1))
            db.session.commit()
            for n in range(3):  # SLOs for the operations on one (their ids are 1 to 3)
                slo_service.create({"name": f"slo {n}", "service": "shop", "sli": "availability",
                                    "objective": 99.0 + n / 10}, 1000.0)
    finally:
        dispose_app(app)


def documented(doc: dict) -> dict[str, set[int]]:
    return {f"{method.upper()} {path}": {int(s) for s in op["responses"]}
            for path, item in doc["paths"].items() for method, op in item.items()}


def test_the_live_server_answers_as_its_document_says(tmp_path, db_url):
    seed(db_url)
    env = h.shop_env(db_url, AIOPS_API_TOKEN=TOKEN)
    with h.running(tmp_path, env, workers=2) as server:
        doc = server.get("/openapi.json").json()
        validate(doc)
        cursors = {"incidents": server.get("/aiops/incidents?limit=1").json()["next"],
                   "notifications": server.get("/aiops/notifications?limit=1").json()["next"],
                   "logs": server.get("/aiops/logs?limit=1").json()["next"],
                   "templates": server.get("/aiops/logs/templates?limit=1").json()["next"],
                   "traces": server.get("/aiops/traces?limit=1").json()["next"],
                   "alerts": server.get("/aiops/alerts?limit=1").json()["next"],
                   "metric_points": server.get("/aiops/metrics/points?limit=1").json()["next"]}
        assert all(cursors.values()), cursors
        seen_path = tmp_path / "seen.txt"
        # A schema-violating query long enough is refused by gunicorn itself (414, documented):
        # a refusal like the app's 4xx, which schemathesis' default list leaves out.
        (tmp_path / "schemathesis.toml").write_text(
            f"[checks.negative_data_rejection]\nexpected-statuses = {json.dumps(list(REFUSALS))}\n")
        report = tmp_path / "schemathesis.json"
        # Run in tmp_path (schemathesis keeps a cache in its working directory), hooks from the checkout.
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        run_env = {**os.environ, "PYTHONPATH": path, "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
                   "AIOPS_ST_CURSORS": json.dumps(cursors), "AIOPS_ST_BASE_URL": server.url,
                   "AIOPS_ST_TOKEN": TOKEN, "AIOPS_ST_SEEN": str(seen_path), "NO_COLOR": "1"}
        try:
            run = subprocess.run(
                [sys.executable, "-c", ST, "run", f"{server.url}/openapi.json",
                 "--header", f"Authorization: Bearer {TOKEN}",
                 "--checks", "all", "--exclude-checks", "use_after_free",
                 "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1",
                 "--request-timeout", "20", "--report", "json", "--report-json-path", str(report)],
                cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"schemathesis did not finish in {RUN_TIMEOUT} s")
        # After the run, before the server stops: the run left no fault behind.
        assert server.get("/simulate/faults").json()["faults"] == []
    output = run.stdout + run.stderr
    (tmp_path / "schemathesis.log").write_text(output)
    assert run.returncode == 0, output[-12000:]

    expected = documented(doc)
    seen: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    other_methods = collections.Counter()  # the unsupported_method check's probes
    for line in seen_path.read_text().splitlines():
        method, path, status = line.split(" ")
        if f"{method} {path}" in expected:
            seen[f"{method} {path}"][int(status)] += 1
        else:
            other_methods[method, int(status)] += 1
    print(f"\nundocumented methods: {dict(other_methods)}")
    assert {status for (method, status) in other_methods if method != "OPTIONS"} <= {405}
    print("\noperation: statuses seen (count) / documented but not seen")
    for operation in sorted(expected):
        statuses = seen.get(operation, {})
        counts = ", ".join(f"{s} x{n}" for s, n in sorted(statuses.items()))
        print(f"  {operation}: {counts or '-'} / {sorted(expected[operation] - set(statuses)) or '-'}")

    # Schemathesis leaves out the operation that serves the document it loaded; this test read it.
    assert set(seen) == set(expected) - {"GET /openapi.json"}, "every operation is exercised"
    for operation, statuses in seen.items():
        assert set(statuses) <= expected[operation], (operation, statuses)
        assert not [s for s in statuses if s >= 500], (operation, statuses)
        assert any(200 <= s < 300 for s in statuses), (operation, statuses)
    # What only a live server with data, a token and links can show: every transition's outcome.
    for action in ("acknowledge", "resolve"):
        statuses = seen[f"POST /aiops/incidents/{{incident_id}}/{action}"]
        assert {200, 401, 404, 409} <= set(statuses), (action, statuses)
    assert {200, 404} <= set(seen["GET /aiops/incidents/{incident_id}"])
    for operation in ("GET /aiops/incidents", "GET /aiops/notifications", "POST /simulate/delay",
                      "POST /v1/traces"):
        assert 400 in seen[operation], (operation, seen[operation])

    summary = json.loads(report.read_text())
    assert summary["operations"]["tested"] == len(expected) - 1 and not summary["errors"]

