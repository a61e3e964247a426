"""Logs never hurt (aiops.logs.noise, clues; aiops.rca.analysis), through the real replay command on a
small system (frontend -> orders -> db-service): a service whose warnings come in bursts in normal
operation has no say in root-cause analysis, even when it writes a new ERROR template on the slow
traces of a fault elsewhere; a quiet service's log lines add only to a candidate the traces name; the
same burst of errors at a quiet service still raises."""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
from pathlib import Path

from tests.conftest import dispose_app, make_app
from tests.support.replay_files import EPOCH, INTERVAL, write_lines

BENCH = Path(__file__).resolve().parents[2] / "bench" / "noisy_logs.py"
_spec = importlib.util.spec_from_file_location("noisy_logs_never_hurt", BENCH)
noisy_logs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(noisy_logs)

WINDOWS, FAULT_AT = 24, 18  # windows of traffic; the window the fault (or the log burst) starts in
RETRIES = (0, 9, 1, 0, 12, 2, 0, 7)  # the bursty service's retry warnings, window after window
BURST = "ERROR ledger rejected write for shard quota"


def server_spans(requests: list[dict], service: str, since: float) -> list[tuple[int, str, str]]:
    """(start ns, trace id, span id) of ``service``'s SERVER spans starting at or after ``since``."""
    found = []
    for request in requests:
        for rs in request["resourceSpans"]:
            attrs = rs["resource"]["attributes"]
            names = [a["value"]["stringValue"] for a in attrs if a["key"] == "service.name"]
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    if names == [service] and s["kind"] == 2 and int(s["startTimeUnixNano"]) >= since * 1e9:
                        found.append((int(s["startTimeUnixNano"]), s["traceId"], s["spanId"]))
    return sorted(found)


def line(t: int, level: str, body: str, trace_id: str, span_id: str) -> dict:
    return {"timeUnixNano": str(t), "body": {"stringValue": body}, "severityText": level,
            "severityNumber": noisy_logs.SEVERITY[level], "traceId": trace_id, "spanId": span_id}


def replay(app, tmp_path: Path, db_ms_after: float, bursty: str | None, burst_at: str | None,
           with_logs: bool = True) -> list[dict]:
    """Replay ``WINDOWS`` windows (db-service takes ``db_ms_after`` from ``FAULT_AT`` on) with an INFO
    line per request; ``bursty``: a service that also writes retry warnings in bursts; ``burst_at``:
    a service that writes twelve lines of a new ERROR template on its requests from ``FAULT_AT`` on.
    Returns the incidents (JSON)."""
    traces, logs = tmp_path / "traces.jsonl", tmp_path / "logs.jsonl.gz"
    windows = [(w, 20.0 if w < FAULT_AT else db_ms_after) for w in range(WINDOWS)]
    requests = [json.loads(text) for text in write_lines(traces, windows, shuffle=False)]
    per_service = noisy_logs.lines_for(requests, "never-hurt", set())
    rng = random.Random(5)
    for w, n in enumerate(RETRIES * (WINDOWS // len(RETRIES)) if bursty else ()):
        spans = server_spans(requests, bursty, EPOCH + w * INTERVAL)[:15]
        per_service[bursty] += [line(t + 700_000, "WARN", f"retrying call attempt {k % 3}", tr, sp)
                                for k, (t, tr, sp) in enumerate(rng.sample(spans, n))]
    if burst_at:
        hit = server_spans(requests, burst_at, EPOCH + FAULT_AT * INTERVAL)[:12]
        per_service[burst_at] += [line(t + 500_000, "ERROR", f"{BURST} {k}", tr, sp)
                                  for k, (t, tr, sp) in enumerate(hit)]
    with gzip.open(logs, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in noisy_logs.log_requests(per_service))
    files = [traces, logs] if with_logs else [traces]
    result = app.test_cli_runner().invoke(args=["aiops", "replay", *map(str, files)])
    assert result.exit_code == 0, result.output
    body = app.test_client().get("/aiops/incidents").get_json()
    return body["active_incidents"] + body["resolved_incidents"]


def candidates(incidents: list[dict]) -> list[tuple[str, float]]:
    """Every incident's candidates (service, evidence), strongest first: how the benches rank them."""
    return sorted(((c["service"], c["evidence"]) for i in incidents for c in i["root_cause_candidates"]),
                  key=lambda c: -c[1])


def test_a_bursty_service_logging_a_new_error_on_a_faults_traces_takes_no_blame(app, tmp_path):
    incidents = replay(app, tmp_path, db_ms_after=400.0, bursty="orders", burst_at="orders")
    assert candidates(incidents)[0][0] == "db-service"
    assert {i["root_cause"]["service"] for i in incidents} == {"db-service"}
    assert "orders" not in {c["service"] for i in incidents for c in i["root_cause_candidates"]}


def test_a_quiet_services_errors_on_a_faults_traces_leave_the_traces_answer_as_it_was(app, tmp_path):
    with_logs = candidates(replay(app, tmp_path, db_ms_after=400.0, bursty=None, burst_at="frontend"))
    alone = make_app(f"sqlite:///{tmp_path}/traces-only.db")
    try:
        traces_only = candidates(replay(alone, tmp_path, 400.0, None, "frontend", with_logs=False))
    finally:
        dispose_app(alone)
    assert with_logs[0][0] == traces_only[0][0] == "db-service"
    assert with_logs[0][1] >= traces_only[0][1]  # the leader's evidence is not diluted by the logs


def test_a_log_only_change_at_a_bursty_service_opens_no_incident(app, tmp_path):
    assert replay(app, tmp_path, db_ms_after=20.0, bursty="orders", burst_at="orders") == []


def test_the_same_change_at_a_quiet_service_opens_one(app, tmp_path):
    incidents = replay(app, tmp_path, db_ms_after=20.0, bursty="orders", burst_at="db-service")
    assert [i["root_cause"]["service"] for i in incidents] == ["db-service"]  # the rule, not deafness
    assert "logs changed" in incidents[0]["title"]
