"""The Tempo pull source end to end: a worker process (``flask aiops worker`` with
``AIOPS_TEMPO_URL``) pulls traces from a second instance of this product serving Tempo's query API
(gunicorn on loopback), which is stopped and restarted in the middle of the run.

The second instance records nothing of its own (``AIOPS_RECORD_REQUESTS=0``): its span table holds
exactly the spans sent to it. The test reads both SQLite files directly, so checking adds no spans.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import requests

from tests.e2e.helpers import running, shop_env, wait_for
from tests.e2e.server import GunicornServer
from tests.e2e.test_export import spans


def tempo_stand_in(tmp_path: Path) -> GunicornServer:
    env = shop_env(f"sqlite:///{tmp_path / 'tempo.db'}", AIOPS_ENABLE_SIMULATION="0",
                   AIOPS_RECORD_REQUESTS="0", AIOPS_SERVICE_NAME="tempo")
    return GunicornServer(env, workers=1, threads=8, log_path=tmp_path / "tempo.log")


def otlp_trace(trace: int, first: int, count: int) -> dict:
    now = time.time_ns()
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": f"{trace:032x}", "spanId": f"{trace * 100 + i + 1:016x}", "name": f"charge-{i}",
             "kind": 2, "startTimeUnixNano": str(now + i * 1_234_567),
             "endTimeUnixNano": str(now + i * 1_234_567 + 7_654_321),
             **({"status": {"code": 2}} if trace % 2 else {})}
            for i in range(first, first + count)]}]}]}


def send(server: GunicornServer, trace: int, first: int, count: int) -> None:
    assert server.post("/v1/traces", json=otlp_trace(trace, first, count)).status_code == 200


def counter(server: GunicornServer, name: str, **labels) -> float:
    text = requests.get(server.url + "/metrics", timeout=10).text
    inside = ",".join(f'{k}="{v}"' for k, v in labels.items())
    sample = f"{name}{{{inside}}}" if inside else name
    match = re.search(rf"^{re.escape(sample)} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def same(pulled: Path, source: Path) -> bool:
    theirs = spans(source)
    return bool(theirs) and spans(pulled).keys() == theirs.keys()


def test_a_worker_pulls_each_span_once_and_rides_out_the_source_going_away(tmp_path):
    tempo = tempo_stand_in(tmp_path).start()
    pulled_db, tempo_db = tmp_path / "pulled.db", tmp_path / "tempo.db"
    env = shop_env(f"sqlite:///{pulled_db}", AIOPS_ENABLE_SIMULATION="0", AIOPS_RECORD_REQUESTS="0",
                   AIOPS_TEMPO_URL=tempo.url, AIOPS_TEMPO_INTERVAL="0.3", AIOPS_TEMPO_TIMEOUT="2")
    try:
        with running(tmp_path, env, name="puller", workers=1) as server:
            for trace in range(1, 6):
                send(tempo, trace, 0, 4)
            wait_for(lambda: same(pulled_db, tempo_db), "every span pulled", 60)
            polls = counter(server, "aiops_tempo_polls_total", outcome="ok")
            wait_for(lambda: counter(server, "aiops_tempo_polls_total", outcome="ok") >= polls + 3,
                     "three more polls", 30)
            got, sent = spans(pulled_db), spans(tempo_db)
            assert len(got) == 20 and got.keys() == sent.keys()  # once each, across polls
            for key, row in sent.items():  # the same span: ids, names, kind, times
                assert row[:6] == got[key][:6], (row, got[key])
                assert abs(row[6] - got[key][6]) < 1e-6 and abs(row[7] - got[key][7]) < 1e-3
            assert counter(server, "aiops_tempo_spans_total", outcome="stored") == 20

            tempo.stop()  # the source goes away: polls fail, the worker goes on
            failed = counter(server, "aiops_tempo_polls_total", outcome="failed")
            wait_for(lambda: counter(server, "aiops_tempo_polls_total", outcome="failed") >= failed + 3,
                     "failed polls counted", 30)
            tempo.start()  # same port, same database
            send(tempo, 2, 4, 2)  # a trace grows
            send(tempo, 9, 0, 3)  # and a new one
            wait_for(lambda: same(pulled_db, tempo_db), "the new spans pulled", 60)
            assert len(spans(pulled_db)) == 25
            assert counter(server, "aiops_tempo_spans_total", outcome="stored") == 25
        log = (tmp_path / "puller.log").read_text()
        assert log.count("is failing") == 1 and log.count("works again") == 1  # once per change of state
    finally:
        tempo.stop()
