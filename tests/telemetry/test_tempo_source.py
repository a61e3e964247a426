"""The Tempo pull source (:mod:`telemetry.tempo_source`) against real HTTP servers on loopback: a
second instance of this product serving Tempo's query API, and a stand-in answering as Tempo's
documentation shows (:mod:`tests.support.tempo_server`), slowly or with hostile answers."""

from __future__ import annotations

import gzip
import logging
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from aiops.settings import settings_of
from telemetry import tempo_source
from telemetry.db import db
from telemetry.tempo_source import TempoSource
from tests.conftest import dispose_app, make_app, sqlite_only
from tests.support.loopback import LoopbackServer, stored
from tests.support.tempo_server import Answer, FakeTempo, documented_search, documented_trace


def make_source(app, url: str, **changes) -> TempoSource:
    settings = settings_of(app).replace(tempo_url=url, **{"tempo_timeout": 5.0, **changes})
    return TempoSource(settings)


def poll(app, source: TempoSource) -> tempo_source.Poll:
    with app.app_context():
        try:
            return source.poll(db.engine)
        finally:
            db.session.remove()


def pulled(app, service: str = "billing") -> dict[tuple[str, str], object]:
    return {(s.trace_id, s.span_id): s for s in stored(app, service=service)}


# --- against a second instance of this product ---------------------------------------------------

@pytest.fixture
def other(tmp_path):
    """A second instance on its own database, behind a real HTTP server; it records nothing of its
    own, so its store holds exactly what is sent to it."""
    app = make_app(f"sqlite:///{tmp_path / 'other.db'}", AIOPS_RECORD_REQUESTS=False,
                   AIOPS_SERVICE_NAME="other")
    server = LoopbackServer(app)
    yield server
    server.stop()
    dispose_app(app)


def otlp_trace(trace: int, spans: int, *, failing: bool = False, first: int = 0) -> dict:
    now = time.time_ns() - 5_000_000_000
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": f"{trace:032x}", "spanId": f"{trace * 100 + i + 1:016x}", "name": f"charge-{i}",
             "kind": 2 if i == 0 else 3, "startTimeUnixNano": str(now + i * 1_234_567),
             "endTimeUnixNano": str(now + i * 1_234_567 + 7_654_321),
             **({"parentSpanId": f"{trace * 100 + 1:016x}"} if i else {}),
             **({"status": {"code": 2, "message": "card declined"}} if failing and i else {})}
            for i in range(first, first + spans)]}]}]}


def send(server: LoopbackServer, body: dict) -> None:
    response = requests.post(server.url + "/v1/traces", json=body, timeout=10)
    assert response.status_code == 200, response.text


def test_traces_pulled_from_another_instance_are_stored_once_with_their_ids_and_times(app, other):
    for trace in (1, 2, 3):
        send(other, otlp_trace(trace, 3, failing=trace == 2))
    source = make_source(app, other.url)

    first = poll(app, source)
    assert (first.mode, first.found, first.fetched, first.stored, first.failures) == ("traceql", 3, 3, 9, {})
    theirs, ours = pulled(other.app), pulled(app)
    assert ours.keys() == theirs.keys() and len(ours) == 9
    for key, span in theirs.items():
        mine = ours[key]
        assert (mine.parent_span_id, mine.endpoint, mine.kind, mine.error) == (
            span.parent_span_id, span.endpoint, span.kind, span.error)
        assert abs(mine.start_time - span.start_time) < 1e-6
        assert abs(mine.duration_ms - span.duration_ms) < 1e-3
    assert [s.error for s in ours.values()].count(True) == 2

    again = poll(app, source)  # nothing changed: nothing fetched
    assert (again.found, again.unchanged, again.fetched, again.stored) == (3, 3, 0, 0)

    send(other, otlp_trace(2, 1, first=3))  # trace 2 grows by a span: only it is fetched again
    grown = poll(app, source)
    assert (grown.fetched, grown.stored, grown.duplicates) == (1, 1, 3)

    restarted = poll(app, make_source(app, other.url))  # a new worker knows nothing: dedup by span id
    assert (restarted.fetched, restarted.stored, restarted.duplicates) == (3, 0, 10)
    assert len(pulled(app)) == 10 and pulled(app).keys() == pulled(other.app).keys()


def test_spans_already_received_over_otlp_are_not_stored_twice(app, other):
    body = otlp_trace(7, 2)
    send(other, body)
    assert app.test_client().post("/v1/traces", json=body).status_code == 200
    done = poll(app, make_source(app, other.url))
    assert (done.fetched, done.stored, done.duplicates) == (1, 0, 2)
    assert len(pulled(app)) == 2


def test_the_product_s_own_service_name_is_refused_as_by_otlp_ingest(app, other):
    own = otlp_trace(8, 2)
    own["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"] = "shop"
    send(other, own)
    done = poll(app, make_source(app, other.url))
    assert (done.fetched, done.stored, done.rejected) == (1, 0, 2)


# --- against a stand-in answering as Tempo's documentation shows ---------------------------------

TRACE_A, TRACE_B = "5b8efff798038103d269b633813fc700", "2f3e0cee77ae5dc9c17ade3689eb2e54"


@pytest.fixture
def tempo():
    with FakeTempo() as fake:
        now = time.time_ns() - 2_000_000_000
        fake.traces[TRACE_A] = Answer(json=documented_trace(TRACE_A, ["eee19b7ec3c1b100", "eee19b7ec3c1b101"],
                                                            now, service="billing"))
        fake.traces[TRACE_B] = Answer(json=documented_trace(TRACE_B, ["563d623c76514f8e"], now,
                                                            service="billing"))
        fake.search = lambda args: Answer(json=documented_search([TRACE_A, TRACE_B], now))
        yield fake


@sqlite_only
def test_documented_answers_are_pulled_and_the_calls_are_tempo_s(app, tempo):
    done = poll(app, make_source(app, tempo.url, tempo_timeout=0.1, tempo_headers={"x-scope-orgid": "team"}))
    assert (done.fetched, done.stored, done.failures) == (2, 3, {})
    assert all({k.lower(): v for k, v in headers.items()}["x-scope-orgid"] == "team"
               for _, _, headers in tempo.requests)  # a multi-tenant Tempo's tenant, on every call
    assert {k[0] for k in pulled(app)} == {TRACE_A, TRACE_B}
    searches = [(args, headers) for path, args, headers in tempo.requests if path == "/api/search"]
    assert [a["q"] for a, _ in searches] == ["{ status = error }", "{}"]
    args = searches[0][0]
    assert int(args["end"]) - int(args["start"]) in (60, 61) and args["limit"] == "100"
    fetch = next(headers for path, _, headers in tempo.requests if path.startswith("/api/traces/"))
    assert fetch["Accept"].startswith("application/protobuf")


@sqlite_only
def test_a_server_that_refuses_traceql_is_searched_by_time_and_that_is_remembered(app, tempo, caplog):
    answer = tempo.search

    def no_traceql(args):
        if "q" in args:
            return Answer(400, body=b"invalid TraceQL query: parse error", content_type="text/plain")
        return answer(args)

    tempo.search = no_traceql
    clock = [time.time()]
    source = make_source(app, tempo.url, tempo_timeout=0.1)
    source.clock = lambda: clock[0]
    with caplog.at_level(logging.WARNING, "telemetry.tempo_source"):
        first = poll(app, source)
        second = poll(app, source)
    assert (first.mode, first.stored, first.failures) == ("time", 3, {})
    assert second.mode == "time" and second.failures == {}
    asked = [args for path, args, _ in tempo.requests if path == "/api/search"]
    assert ["q" in a for a in asked] == [True, False, False]  # TraceQL tried once, then not
    assert len([r for r in caplog.records if "refused TraceQL" in r.message]) == 1
    clock[0] += tempo_source.TRACEQL_RETRY + 1  # later, TraceQL is tried again: still refused,
    with caplog.at_level(logging.INFO, "telemetry.tempo_source"):
        assert poll(app, source).mode == "time"  # and not logged again
        tempo.search = answer  # then answered
        clock[0] += tempo_source.TRACEQL_RETRY + 1
        assert poll(app, source).mode == "traceql"
    asked = [args for path, args, _ in tempo.requests if path == "/api/search"]
    assert ["q" in a for a in asked] == [True, False, False, True, False, True, True]
    messages = [r.message for r in caplog.records]
    assert len([m for m in messages if "refused TraceQL" in m]) == 1
    assert len([m for m in messages if "answers TraceQL again" in m]) == 1


@sqlite_only
def test_a_slow_server_is_a_counted_failure_and_never_holds_the_poll(app, tempo, caplog):
    client = app.test_client()
    before = scrape(client)
    answer = tempo.search
    tempo.search = lambda args: Answer(json=answer(args).json, delay=0.5)  # over the 0.1 s timeout
    source = make_source(app, tempo.url, tempo_timeout=0.1)
    with caplog.at_level(logging.WARNING, "telemetry.tempo_source"):
        done = poll(app, source)
        poll(app, source)  # failing still: not logged again
    assert done.failures == {"search": 1} and done.fetched == 0
    assert len([r for r in caplog.records if "is failing" in r.message]) == 1
    after = scrape(client)
    assert delta(before, after, "aiops_tempo_polls_total", outcome="failed") == 2
    assert delta(before, after, "aiops_tempo_failures_total", stage="search") == 2

    tempo.search = answer  # the search answers again, but every trace is slow: the poll gives up
    ids = [f"{i + 1:032x}" for i in range(10)]
    tempo.search = lambda args: Answer(json=documented_search(ids, time.time_ns()))
    for trace_id in ids:
        tempo.traces[trace_id] = Answer(json={"batches": []}, delay=0.3)
    with caplog.at_level(logging.INFO, "telemetry.tempo_source"):
        slow = poll(app, source)
    assert slow.failures == {"trace": tempo_source.FAILURES_PER_POLL}
    assert len(tempo.paths("/api/traces/")) == tempo_source.FAILURES_PER_POLL
    assert any("cut short" in note for note in slow.notes)


@sqlite_only
def test_a_trickling_answer_is_cut_off_at_the_timeout(app, tempo):
    answer = tempo.search
    tempo.search = lambda args: Answer(json=answer(args).json, trickle=0.02)  # each byte in time, not all
    done = poll(app, make_source(app, tempo.url, tempo_timeout=0.1))
    assert done.failures == {"search": 1}
    assert "within 0.1s" in done.errors[0]


@sqlite_only
def test_hostile_answers_are_refused_without_a_crash(app, tempo):
    now = time.time_ns()
    bad_ids = ["../../metrics", "%2e%2e%2fmetrics", "x" * 40, "0" * 32]
    tempo.search = lambda args: Answer(json=documented_search([*bad_ids, TRACE_A, TRACE_B], now))
    tempo.traces[TRACE_A] = Answer(body=b"<html>502 Bad Gateway</html>", content_type="text/html")
    huge = documented_trace(TRACE_B, [f"{i + 1:016x}" for i in range(400)], now, service="billing")
    tempo.traces[TRACE_B] = Answer(json=huge)
    done = poll(app, make_source(app, tempo.url, tempo_timeout=1.0, otlp_max_bytes=20_000))
    assert tempo.paths("/api/traces/") == [f"/api/traces/{TRACE_A}", f"/api/traces/{TRACE_B}"]
    assert done.failures == {"trace": 2} and done.stored == 0
    assert "not JSON or protobuf" in done.errors[0] and "over the limit" in done.errors[1]
    assert any("4 traces without a valid traceID" in note for note in done.notes)


@sqlite_only
@pytest.mark.parametrize("answer, error", [
    (Answer(body=b"not json at all"), "not valid JSON"),
    (Answer(json=["traces"]), "no 'traces' list"),
    (Answer(302, headers={"Location": "http://169.254.169.254/"}), "HTTP 302"),  # not followed
    (Answer(500, body=b"oops"), "HTTP 500"),
    (Answer(body=gzip.compress(b"[" * 10_000_000), headers={"Content-Encoding": "gzip"}), "over the limit"),
    (Answer(body=b"{}", headers={"Content-Encoding": "br"}), "Content-Encoding"),
])
def test_a_search_answer_that_is_not_one_is_a_failed_poll(app, tempo, answer, error):
    tempo.search = lambda args: answer
    done = poll(app, make_source(app, tempo.url, tempo_timeout=1.0))
    assert done.failures == {"search": 1} and error in done.errors[0]
    assert tempo.paths("/api/traces/") == []


@sqlite_only
def test_spans_of_another_trace_in_an_answer_are_refused(app, tempo):
    now = time.time_ns()
    intruder = documented_trace(TRACE_B, ["0000000000000abc"], now, "billing")["batches"]
    tempo.traces[TRACE_A].json["batches"] += intruder
    done = poll(app, make_source(app, tempo.url))
    assert done.rejected == 1
    assert set(pulled(app)) == {(TRACE_A, "eee19b7ec3c1b100"), (TRACE_A, "eee19b7ec3c1b101"),
                                (TRACE_B, "563d623c76514f8e")}  # from their own fetches


@sqlite_only
def test_a_store_failure_is_counted_and_the_trace_fetched_again(app, tempo, monkeypatch):
    import telemetry.store

    def broken(engine, rows):
        raise RuntimeError("disk full")

    source = make_source(app, tempo.url)
    monkeypatch.setattr(telemetry.store, "insert_spans", broken)
    failed = poll(app, source)
    assert failed.failures == {"store": 2} and failed.fetched == 2
    monkeypatch.undo()
    done = poll(app, source)
    assert (done.fetched, done.stored, done.failures) == (2, 3, {})


@sqlite_only
def test_an_unreachable_server_is_a_failure_logged_once_until_it_recovers(app, tempo, caplog):
    source = make_source(app, "http://127.0.0.1:9", tempo_timeout=0.1)  # the discard port: refused
    with caplog.at_level(logging.INFO, "telemetry.tempo_source"):
        assert poll(app, source).failures == {"search": 1}
        assert poll(app, source).failures == {"search": 1}
        source.url, source.timeout = tempo.url, 5.0  # 0.1 s was for the refusal; a loaded machine needs more
        assert poll(app, source).failures == {}
    messages = [r.message for r in caplog.records]
    assert len([m for m in messages if "is failing" in m]) == 1
    assert len([m for m in messages if "works again" in m]) == 1


def scrape(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def delta(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)
