"""A stand-in for a Tempo query API on loopback: canned answers by path, every request recorded.

A real ``werkzeug.serving`` server in a thread, for tests of the Tempo pull source: answers in the
shapes of Tempo's HTTP API documentation (:mod:`tests.support.tempo_docs`), and the hostile ones a
test scripts (slow, trickling, huge, not JSON, a redirect)::

    with FakeTempo() as tempo:
        tempo.search = lambda args: Answer(json={"traces": [...]})
        tempo.traces["5b8e..."] = Answer(json=tempo_docs.TRACE_V1)
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.support import tempo_docs


@dataclass
class Answer:
    """One canned answer; ``delay`` seconds before it, or ``trickle`` seconds between its bytes."""

    status: int = 200
    json: object = None
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    trickle: float = 0.0

    def response(self) -> Response:
        data = json.dumps(self.json).encode() if self.json is not None else self.body
        if self.delay:
            time.sleep(self.delay)
        if self.trickle:
            def slowly():
                for i in range(len(data)):
                    time.sleep(self.trickle)
                    yield data[i:i + 1]

            data_or_stream = slowly()
        else:
            data_or_stream = data
        return Response(data_or_stream, status=self.status, content_type=self.content_type,
                        headers=self.headers)


NOT_FOUND = Answer(404, body=b"trace not found", content_type="text/plain")


class FakeTempo:
    """``GET /api/search`` answers ``search(args)``; ``GET /api/traces/<id>`` answers ``traces[id]``."""

    def __init__(self):
        self.search: Callable[[dict], Answer] = lambda args: Answer(json={"traces": []})
        self.traces: dict[str, Answer] = {}
        self.requests: list[tuple[str, dict, dict]] = []  # (path, query args, headers)
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.requests.append((request.path, dict(request.args), dict(request.headers)))
        if request.path == "/api/search":
            answer = self.search(dict(request.args))
        elif request.path.startswith("/api/traces/"):
            answer = self.traces.get(request.path.rsplit("/", 1)[1], NOT_FOUND)
        else:
            answer = Answer(404, body=b"404 page not found", content_type="text/plain")
        return answer.response()(environ, start_response)

    def paths(self, prefix: str = "/") -> list[str]:
        with self._lock:
            return [path for path, _, _ in self.requests if path.startswith(prefix)]

    def __enter__(self) -> FakeTempo:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def documented_trace(trace_id: str, span_ids: list[str], start_ns: int, service: str = "my.service") -> dict:
    """The docs' ``/api/traces`` example (``batches``, base64 ids) for ``trace_id``: one span per id,
    the first the parent of the others, starting at ``start_ns`` (the docs' own times are of 2023,
    older than live ingest takes)."""
    import base64

    doc = copy.deepcopy(tempo_docs.TRACE_V1)
    batch = doc["batches"][0]
    batch["resource"]["attributes"][0]["value"]["stringValue"] = service
    template = batch["scopeSpans"][0]["spans"][0]
    spans = []
    for i, span_id in enumerate(span_ids):
        span = copy.deepcopy(template)
        span["traceId"] = base64.b64encode(bytes.fromhex(trace_id)).decode()
        span["spanId"] = base64.b64encode(bytes.fromhex(span_id)).decode()
        if i:
            span["parentSpanId"] = base64.b64encode(bytes.fromhex(span_ids[0])).decode()
        span["startTimeUnixNano"] = str(start_ns + i * 1_000_000)
        span["endTimeUnixNano"] = str(start_ns + i * 1_000_000 + 5_000_000)
        spans.append(span)
    batch["scopeSpans"][0]["spans"] = spans
    return doc


def documented_search(trace_ids: list[str], start_ns: int, matched: int = 1) -> dict:
    """The docs' TraceQL search example, answering ``trace_ids``."""
    doc = copy.deepcopy(tempo_docs.TRACEQL_SEARCH)
    entry = doc["traces"][0]
    doc["traces"] = [{**copy.deepcopy(entry), "traceID": t, "startTimeUnixNano": str(start_ns)}
                     for t in trace_ids]
    for trace in doc["traces"]:
        trace["spanSets"][0]["matched"] = matched
    return doc
