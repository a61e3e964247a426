"""The export's sender (telemetry.export.sender) and fallback file, stepped by hand with a fake
clock and a fake endpoint: no thread, no network, no sleeping."""

from __future__ import annotations

import json
import os

from telemetry.export import policy, traces_url
from telemetry.export.fallback import Fallback
from telemetry.export.sender import Exporter
from telemetry.export.spans import json_line, readable_spans, rows_of_line


def row(i: int, start: float = 1_790_000_000.123456) -> tuple:
    return (f"{i + 1:032x}", f"{i + 1:016x}", None if i % 3 == 0 else f"{i:016x}", "shop", f"ep{i % 4}",
            2 if i % 2 else 3, "GET", 200 if i % 5 else 503, i % 5 == 0, start + i / 1000, 1.25 + i,
            "payment" if i % 2 == 0 else None, None, "boom" if i % 5 == 0 else None, None, None)


class Endpoint:
    """A fake OTLP endpoint: stores each span id it accepts; fails while ``down``."""

    def __init__(self):
        self.down = False
        self.refuse = 0  # batches to answer 400
        self.received: list[str] = []
        self.calls = 0

    def send(self, spans) -> tuple[bool, str | None, int | None]:
        self.calls += 1
        if self.refuse:
            self.refuse -= 1
            return False, "HTTP 400 Bad Request: invalid span", 400
        if self.down:
            return False, "ConnectionError: refused (Authorization: Bearer tok-123)", None
        self.received += [f"{s.context.span_id:016x}" for s in spans]
        return True, None, 200


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def exporter(tmp_path, endpoint, clock, *, max_spans=100, max_age=300.0, fallback_bytes=10_000_000,
             batch_size=10):
    return Exporter(endpoint.send, Fallback(tmp_path / "fallback", fallback_bytes),
                    pending=policy.Pending(max_spans, max_age, batch_size),
                    backoff=policy.Backoff(1.0, 16.0, jitter=0.0), breaker=policy.Breaker(5, 60.0),
                    secrets=("tok-123",), clock=clock, endpoint="http://receiver/v1/traces",
                    thread=False)


def drain(exp, clock, steps=1000):
    for _ in range(steps):
        wait = exp.step()
        if wait:
            clock.now += wait


def test_rows_survive_the_otlp_json_round_trip_exactly():
    rows = [row(i) for i in range(20)]
    back = rows_of_line(json_line(rows))
    start = 9  # SPAN_FIELDS: start_time (a float: equal to a fraction of a microsecond)
    assert [r[:start] + r[start + 1:] for r in back] == [r[:start] + r[start + 1:] for r in rows]
    assert all(abs(a[start] - b[start]) < 1e-6 for a, b in zip(back, rows, strict=True))
    line = json.loads(json_line(rows[:1]))
    span = line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["spanId"] == rows[0][1] and span["traceId"] == rows[0][0]  # hex ids, as OTLP/JSON says


def test_the_endpoint_url_gets_the_traces_path_only_when_it_has_none():
    assert traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert traces_url("https://c/otlp/v1/traces") == "https://c/otlp/v1/traces"


def test_every_span_is_sent_once_in_order(tmp_path):
    endpoint, clock = Endpoint(), Clock()
    exp = exporter(tmp_path, endpoint, clock)
    rows = [row(i) for i in range(55)]
    exp.submit(rows[:30])
    exp.submit(rows[30:])
    drain(exp, clock, 20)
    assert endpoint.received == [r[1] for r in rows]
    f = exp.figures()
    assert (f.exported, f.queued, f.retried, f.dropped, f.fallback_bytes) == (55, 0, 0, 0, 0)


def test_failures_back_off_then_open_the_breaker_and_spill_to_the_file(tmp_path):
    endpoint, clock = Endpoint(), Clock()
    endpoint.down = True
    exp = exporter(tmp_path, endpoint, clock)
    exp.submit([row(i) for i in range(10)])
    waits = []
    for attempt in range(5):
        exp.step()  # one failed attempt
        waits.append(exp._retry_at - clock.now)
        if attempt < 4:
            assert exp.step() > 0 and endpoint.calls == attempt + 1  # backing off: nothing sent
            clock.now = exp._retry_at
    assert endpoint.calls == 5
    assert waits == [1.0, 2.0, 4.0, 8.0, 60.0]  # jitter off here; after the fifth the breaker decides
    figures = exp.figures()
    assert figures.breaker_state == policy.OPEN
    assert figures.breaker_trips == 1 and figures.retried == 4
    assert "tok-123" not in figures.last_error and "refused" in figures.last_error
    # While open: nothing is sent, and memory goes to the fallback file.
    clock.now = exp.breaker.opened_at + 1
    exp.submit([row(i) for i in range(10, 15)])
    exp.step()
    assert endpoint.calls == 5
    assert exp.figures().queued == 0 and exp.figures().fallback_bytes > 0
    assert policy.verdict(exp.figures())[0] == "failing"


def test_spilled_spans_are_replayed_in_order_after_recovery(tmp_path):
    endpoint, clock = Endpoint(), Clock()
    endpoint.down = True
    exp = exporter(tmp_path, endpoint, clock, max_spans=20)
    rows = [row(i) for i in range(100)]
    for start in range(0, 60, 10):  # overflow: the oldest go to the file
        exp.submit(rows[start:start + 10])
    drain(exp, clock, 50)  # fails, opens the breaker, spills everything
    exp.submit(rows[60:])
    assert endpoint.received == []
    endpoint.down = False
    clock.now += 61  # the breaker lets a trial through
    drain(exp, clock, 200)
    assert endpoint.received == [r[1] for r in rows]
    f = exp.figures()
    assert f.exported == 100 and f.fallback_bytes == 0 and f.breaker_state == policy.CLOSED
    assert policy.verdict(f) == ("healthy", [])
    assert not list((tmp_path / "fallback").rglob("*.jsonl"))


def test_spans_older_than_the_age_limit_go_to_the_file_and_still_arrive(tmp_path):
    endpoint, clock = Endpoint(), Clock()
    endpoint.down = True
    exp = exporter(tmp_path, endpoint, clock, max_age=5.0)
    exp.submit([row(i) for i in range(3)])
    exp.step()  # one failure: backing off
    clock.now += 6
    exp.step()
    assert exp.figures().queued == 0 and exp.figures().fallback_bytes > 0
    endpoint.down = False
    drain(exp, clock, 20)
    assert endpoint.received == [row(i)[1] for i in range(3)]


def test_a_full_fallback_drops_its_oldest_file_and_counts_it(tmp_path):
    endpoint, clock = Endpoint(), Clock()
    endpoint.down = True
    line_bytes = len(json_line([row(i) for i in range(10)])) + 1
    exp = exporter(tmp_path, endpoint, clock, max_spans=10, fallback_bytes=line_bytes * 30)
    for start in range(0, 600, 10):
        exp.submit([row(i) for i in range(start, start + 10)])
        exp.step()
        clock.now += 0.001
    f = exp.figures()
    assert f.dropped > 0 and f.fallback_bytes <= line_bytes * 30
    assert "dropped" in " ".join(policy.verdict(f)[1])
    endpoint.down = False
    clock.now += 100
    drain(exp, clock, 500)
    # What was kept arrives, once each and in order; only whole old files were dropped.
    assert len(endpoint.received) == len(set(endpoint.received)) == 600 - f.dropped
    assert endpoint.received == [row(i)[1] for i in range(f.dropped, 600)]


def test_a_simulated_collector_failure_fails_attempts_without_sending(tmp_path):
    endpoint, clock = Endpoint(), Clock()
    exp = exporter(tmp_path, endpoint, clock)
    exp.blackout = lambda: clock.now + 5
    exp.submit([row(0)])
    exp.step()
    assert endpoint.calls == 0 and "simulated" in exp.figures().last_error
    exp.blackout = lambda: None
    drain(exp, clock, 10)
    assert endpoint.received == [row(0)[1]]


def test_a_new_process_adopts_the_files_of_one_that_is_gone(tmp_path):
    root = tmp_path / "fallback"
    (root / "999999999").mkdir(parents=True)
    lines = [json_line([row(i)]) for i in range(3)]
    (root / "999999999" / "00000001.jsonl").write_text("".join(line + "\n" for line in lines))
    endpoint, clock = Endpoint(), Clock()
    exp = exporter(tmp_path, endpoint, clock)
    drain(exp, clock, 10)
    assert endpoint.received == [row(i)[1] for i in range(3)]
    assert not (root / "999999999").exists()


def test_what_memory_holds_at_exit_is_sent_by_the_next_process(tmp_path):
    endpoint, clock = Endpoint(), Clock()
    endpoint.down = True
    first = exporter(tmp_path, endpoint, clock)
    first.submit([row(i) for i in range(7)])
    first.close()
    assert first.figures().queued == 0 and first.figures().fallback_bytes > 0
    endpoint.down = False
    second = exporter(tmp_path, endpoint, clock)  # same pid here: it adopts its own folder's files
    drain(second, clock, 10)
    assert endpoint.received == [row(i)[1] for i in range(7)]


def test_a_batch_the_endpoint_refuses_is_dropped_not_retried_forever(tmp_path):
    endpoint, clock = Endpoint(), Clock()
    endpoint.refuse = 1
    exp = exporter(tmp_path, endpoint, clock, max_spans=100)
    exp.submit([row(i) for i in range(25)])  # batches of 10: the first is refused
    drain(exp, clock, 10)
    assert endpoint.received == [row(i)[1] for i in range(10, 25)]
    f = exp.figures()
    assert (f.dropped, f.exported, f.consecutive_failures) == (10, 15, 0) and "400" in f.last_error


def test_files_left_in_this_pid_s_own_folder_are_sent_first_and_none_overwritten(tmp_path):
    root = tmp_path / "fallback"
    own, gone = root / str(os.getpid()), root / "999999998"
    own.mkdir(parents=True)
    gone.mkdir()
    (own / "00000001.jsonl").write_text(json_line([row(0)]) + "\n")
    (own / "00000002.jsonl").write_text(json_line([row(1)]) + "\n")
    (gone / "00000001.jsonl").write_text(json_line([row(2)]) + "\n")
    endpoint, clock = Endpoint(), Clock()
    exp = exporter(tmp_path, endpoint, clock)
    drain(exp, clock, 10)
    assert endpoint.received == [row(i)[1] for i in range(3)]


def test_submit_never_raises(tmp_path):
    endpoint, clock = Endpoint(), Clock()
    exp = exporter(tmp_path, endpoint, clock)
    exp.pending = None  # broken on purpose
    exp.submit([row(0)])


def test_stored_attributes_are_exported_and_survive_the_fallback_line():
    """The ``attributes`` column (a work span's figures, an ingested span's pod) goes out as span
    attributes, and a fallback line gives the same column back."""
    import json

    stored = json.dumps({"aiops.cycle.spans": 12, "aiops.cycle.anomalies": 1, "k8s.pod.name": "ts-a-1"})
    work = row(7)[:-1] + (stored,)
    [span] = readable_spans([work])
    assert span.attributes["aiops.cycle.spans"] == 12 and span.attributes["k8s.pod.name"] == "ts-a-1"
    assert span.attributes["http.request.method"] == "GET"  # the columns' keys beside them
    back = rows_of_line(json_line([row(1), work]))
    assert back[0][-1] is None
    assert json.loads(back[1][-1]) == json.loads(stored) and back[1][:9] == work[:9]


def test_a_line_reads_back_as_ingest_maps_it_and_as_the_memory_path_sends_it():
    """The fallback line is written and read as plain JSON (not protobuf's JSON mapping): the rows it
    gives back are those ``flask aiops replay`` or a receiver would map from it, and those the
    receiver gets when the same rows go out from memory (the SDK's spans, the official encoder)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from telemetry import otlp

    rows = [row(i) for i in range(30)]
    rows[4] = rows[4][:5] + (0,) + rows[4][6:]  # kind UNSPECIFIED goes out as INTERNAL
    rows[5] = rows[5][:12] + ("ValueError", "bad \"input\" ü", "Traceback ...\n  line 1", None)
    work = {"aiops.cycle.spans": 3, "aiops.ratio": 0.5, "aiops.flag": True, "aiops.name": "x"}
    rows[6] = (rows[6][:3] + ("aiops", "detection cycle", 1, None, None, False) + rows[6][9:11]
               + (None, None, None, None, json.dumps(work, separators=(",", ":"))))
    line = json_line(rows)
    back = rows_of_line(line)
    ingest = otlp.to_rows(otlp.parse_json(line)).rows
    memory = otlp.to_rows(encode_spans(readable_spans(rows))).rows
    assert back == ingest == memory
    assert back[[r[1] for r in back].index(rows[6][1])][-1] == rows[6][-1]
