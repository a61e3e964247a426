"""A pull source: recent traces from a Tempo query API (``AIOPS_TEMPO_URL``), stored as
``POST /v1/traces`` stores them.

The worker calls :meth:`TempoSource.poll` every ``AIOPS_TEMPO_INTERVAL`` (never a web request).
One poll searches ``GET /api/search`` for the traces of the last ``AIOPS_TEMPO_LOOKBACK`` seconds
(TraceQL: those with a failed span, then all; at most ``AIOPS_TEMPO_LIMIT``), fetches each trace
that changed since it was last stored with ``GET /api/traces/<id>`` (``Accept:
application/protobuf``, JSON understood too), and stores its spans through OTLP ingest's own path:
the same decoding limits (:mod:`telemetry.otlp_limits`, ``AIOPS_OTLP_MAX_*``), the same span checks
(:func:`telemetry.ingest.span_checks`: times near now, sizes, the product's own service name), and
the same insert, where a span id already stored is skipped (the unique index), so a span pulled
twice, or received by ``POST /v1/traces`` too, is stored once. Spans are not forwarded by the OTLP
export (``AIOPS_EXPORT_INGESTED``): pulled from a tracing backend, they are already in one.

Bounded and never raising: every call has ``AIOPS_TEMPO_TIMEOUT`` from connect to last byte
(a server that trickles is cut off), an answer is read up to ``AIOPS_OTLP_MAX_BYTES`` after
decompression, a poll stops fetching after :data:`FAILURES_PER_POLL` failed fetches in a row or
half the interval, and any failure is counted and logged once per change of state, not per poll.
A server that refuses TraceQL (400, 404 or 501 to ``q``) gets searches by time alone (no ``q``)
for :data:`TRACEQL_RETRY` seconds, then TraceQL again. Redirects are not followed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from telemetry import otlp, otlp_limits, tempo_pull
from telemetry.selfmetrics import never_raise, per_process

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
FAILURES_PER_POLL = 3  # failed fetches in a row that end a poll (the server is in trouble)
TRACEQL_RETRY = 600.0  # seconds a server that refused TraceQL is searched by time alone
SEEN_TRACES = 10_000  # trace summaries remembered, to skip fetching unchanged traces again
REFUSES_TRACEQL = (400, 404, 501)
_CODINGS = {"": None, "identity": None, "gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
ACCEPT_TRACE = "application/protobuf, application/json;q=0.5"


class CallFailed(Exception):
    """One call to the Tempo API failed (network, timeout, status, size, body)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class Poll:
    """What one poll did."""

    mode: str = "traceql"  # or "time": searches without q
    found: int = 0  # traces the searches answered
    unchanged: int = 0  # not fetched: stored whole with the same summary
    fetched: int = 0
    stored: int = 0  # new spans stored
    duplicates: int = 0  # spans already stored
    rejected: int = 0  # spans refused (ingest's checks, another trace's spans, invalid ids)
    failures: dict[str, int] = field(default_factory=dict)  # by stage: search, trace, store
    errors: list[str] = field(default_factory=list)  # the failures' messages
    notes: list[str] = field(default_factory=list)  # what else went less than well

    def failed(self, stage: str, error: str) -> None:
        self.failures[stage] = self.failures.get(stage, 0) + 1
        self.errors.append(f"{stage}: {error}")


class _Metrics:
    def __init__(self):
        from prometheus_client import Counter, Gauge

        self.polls = Counter("aiops_tempo_polls", "Polls of the Tempo source (AIOPS_TEMPO_URL) by outcome: "
                             "ok, or failed (a search or fetch failed)", ["outcome"], registry=None)
        self.traces = Counter("aiops_tempo_traces_fetched", "Traces fetched from the Tempo source",
                              registry=None)
        self.spans = Counter("aiops_tempo_spans", "Spans of fetched traces by outcome: stored (new), "
                             "duplicate (already stored), rejected (ingest's checks)", ["outcome"],
                             registry=None)
        self.failures = Counter("aiops_tempo_failures", "Failed calls and writes of the Tempo source, by "
                                "stage: search, trace (a fetch), store", ["stage"], registry=None)
        self.last_success = Gauge("aiops_tempo_last_success_timestamp_seconds", "When a poll of the Tempo "
                                  "source last succeeded", registry=None, multiprocess_mode="max")
        for outcome in ("ok", "failed"):  # zeros from the first scrape, so rate() works
            self.polls.labels(outcome)
        for outcome in ("stored", "duplicate", "rejected"):
            self.spans.labels(outcome)
        for stage in ("search", "trace", "store"):
            self.failures.labels(stage)


metrics = per_process(_Metrics)


@never_raise
def _count(poll: Poll, now: float) -> None:
    m = metrics()
    m.polls.labels("failed" if poll.failures else "ok").inc()
    m.traces.inc(poll.fetched)
    for outcome, n in (("stored", poll.stored), ("duplicate", poll.duplicates), ("rejected", poll.rejected)):
        if n:
            m.spans.labels(outcome).inc(n)
    for stage, n in poll.failures.items():
        m.failures.labels(stage).inc(n)
    if not poll.failures:
        m.last_success.set(now)


def _shown(url: str) -> str:
    """The URL as logs show it: without a password, query or fragment."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


class TempoSource:
    """The poller of one worker process: its HTTP session, the traces it stored, its state."""

    def __init__(self, settings, session=None, clock=time.time):
        import requests

        self.url = settings.tempo_url.rstrip("/")
        self.shown = _shown(self.url)
        self.timeout = settings.tempo_timeout
        self.window = max(settings.tempo_lookback, settings.tempo_interval)  # no gap between polls
        self.limit = settings.tempo_limit
        self.budget = settings.tempo_interval / 2  # a poll's time to fetch, at most
        self.max_bytes = settings.otlp_max_bytes
        self.limits = otlp_limits.Limits(settings.otlp_max_spans, settings.otlp_max_items)
        self.settings = settings
        self.session = session or requests.Session()
        self.session.headers.update(settings.tempo_headers)  # X-Scope-OrgID, authorization
        self.clock = clock
        self.seen = tempo_pull.Seen(SEEN_TRACES)
        self.traceql_refused_until = 0.0
        self.failing: str | None = None  # the last poll's first error, for logging changes only

    # --- HTTP ------------------------------------------------------------------------------------

    def get(self, path: str, params: dict | None, accept: str) -> tuple[bytes, str]:
        """One call: the decompressed body (at most ``AIOPS_OTLP_MAX_BYTES``) and its content type,
        all within the timeout. Raises :class:`CallFailed`."""
        import requests
        from urllib3.exceptions import HTTPError

        deadline = time.monotonic() + self.timeout
        try:
            with self.session.get(self.url + path, params=params, stream=True, timeout=self.timeout,
                                  allow_redirects=False,
                                  headers={"Accept": accept, "Accept-Encoding": "gzip"}) as response:
                if response.status_code != 200:
                    raise CallFailed(f"HTTP {response.status_code} from {path}", response.status_code)
                coding = _CODINGS.get(response.headers.get("Content-Encoding", "").strip().lower(), "?")
                if coding == "?":
                    raise CallFailed(f"unsupported Content-Encoding from {path}")
                body = otlp.read_body(self._chunks(response.raw, deadline), coding=coding,
                                      limit=self.max_bytes)
                return body, response.headers.get("Content-Type", "")
        except otlp.OtlpError as exc:  # too large, or bad gzip
            raise CallFailed(f"{path}: {exc}") from None
        except (requests.RequestException, HTTPError, OSError) as exc:
            raise CallFailed(f"{path}: {type(exc).__name__}: {exc}") from None

    def _chunks(self, raw, deadline: float):
        while True:
            if time.monotonic() > deadline:
                raise CallFailed(f"no whole answer within {self.timeout:g}s (AIOPS_TEMPO_TIMEOUT)")
            chunk = raw.read1(CHUNK, decode_content=False)
            if not chunk:
                return
            yield chunk

    def _json(self, path: str, params: dict):
        body, _ = self.get(path, params, "application/json")
        try:
            return otlp.load_json(body, object_hook=otlp_limits.json_object_counter(self.limits))
        except otlp.OtlpError as exc:
            raise CallFailed(f"{path}: {exc}") from None

    # --- one poll --------------------------------------------------------------------------------

    def search(self, poll: Poll, now: float) -> list[list[tempo_pull.Found]]:
        """The poll's searches: TraceQL, or by time alone while TraceQL is refused. The refusal and
        the return of TraceQL are logged when they happen, not at each retry."""
        if now >= self.traceql_refused_until:
            try:
                found = [self._found(tempo_pull.search_params(now, self.window, self.limit, q), poll)
                         for q in tempo_pull.TRACEQL_QUERIES]
            except CallFailed as exc:
                if exc.status not in REFUSES_TRACEQL:
                    raise
                (log.debug if self.traceql_refused_until else log.warning)(
                    "Tempo source %s refused TraceQL (%s): searching by time alone for %.0f s",
                    self.shown, exc, TRACEQL_RETRY)
                self.traceql_refused_until = now + TRACEQL_RETRY
            else:
                if self.traceql_refused_until:
                    log.info("Tempo source %s answers TraceQL again", self.shown)
                    self.traceql_refused_until = 0.0
                return found
        poll.mode = "time"
        return [self._found(tempo_pull.search_params(now, self.window, self.limit, None), poll)]

    def _found(self, params: dict, poll: Poll) -> list[tempo_pull.Found]:
        try:
            found, refused = tempo_pull.found_traces(self._json("/api/search", params), self.limit)
        except otlp.OtlpError as exc:
            raise CallFailed(f"/api/search: {exc}") from None
        if refused:
            poll.notes.append(f"search: {refused} traces without a valid traceID ignored")
        return found

    def fetch(self, trace_id: str):
        """One trace as an ``ExportTraceServiceRequest``. Raises :class:`CallFailed`."""
        path = f"/api/traces/{trace_id}"  # 32 hex digits (tempo_pull.trace_id_of): safe in a path
        body, content_type = self.get(path, None, ACCEPT_TRACE)
        try:
            return tempo_pull.decode_trace(body, content_type, self.limits)
        except otlp.OtlpError as exc:
            raise CallFailed(f"{path}: {exc}") from None

    def store(self, engine, trace_id: str, message, poll: Poll) -> None:
        """Store a fetched trace's new spans as ``POST /v1/traces`` would (raises if the store fails)."""
        from telemetry.db import db
        from telemetry.ingest import span_checks
        from telemetry.store import insert_spans, stored_span_ids

        mapped = otlp.to_rows(message, span_checks(self.settings))
        rows, foreign = tempo_pull.of_trace(mapped.rows, trace_id)
        try:
            known = stored_span_ids(trace_id)
        finally:
            db.session.rollback()  # end the read: the insert writes on its own connection
        new = {row[1]: row for row in rows if row[1] not in known}
        insert_spans(engine, list(new.values()))
        poll.stored += len(new)
        poll.duplicates += len(rows) - len(new)
        poll.rejected += mapped.rejected + foreign

    def poll(self, engine) -> Poll:
        """Search, fetch and store once; never raises (failures are in the result, the metrics and,
        when the state changes, the log)."""
        poll, now, started = Poll(), self.clock(), time.monotonic()
        try:
            self._poll(engine, poll, now, started)
        except CallFailed as exc:
            poll.failed("search", str(exc))
        except Exception as exc:  # noqa: BLE001 - a poll never raises into the scheduler
            log.exception("Tempo source %s: the poll failed", self.shown)
            poll.failed("poll", repr(exc))
        _count(poll, now)
        self._log_change(poll)
        log.debug("Tempo source poll: %s", poll)
        return poll

    def _poll(self, engine, poll: Poll, now: float, started: float) -> None:
        found = self.search(poll, now)
        poll.found = len({f.trace_id for search in found for f in search})
        wanted, poll.unchanged = tempo_pull.to_fetch(found, self.seen, self.limit)
        in_a_row = 0
        for item in wanted:
            if in_a_row >= FAILURES_PER_POLL or time.monotonic() - started > self.budget:
                poll.notes.append(f"poll cut short: {len(wanted) - wanted.index(item)} traces left for later")
                return
            try:
                message = self.fetch(item.trace_id)
            except CallFailed as exc:
                poll.failed("trace", str(exc))
                in_a_row += 1
                continue
            in_a_row = 0
            poll.fetched += 1
            try:
                self.store(engine, item.trace_id, message, poll)
            except Exception as exc:  # noqa: BLE001 - counted; the trace is fetched again next poll
                log.warning("Tempo source: could not store trace %s: %r", item.trace_id, exc)
                poll.failed("store", repr(exc))
                continue
            self.seen.add(item)

    def _log_change(self, poll: Poll) -> None:
        error = poll.errors[0] if poll.errors else None
        if error is not None and self.failing is None:
            log.warning("Tempo source %s is failing: %s (logged again when it recovers)", self.shown, error)
        elif error is None and self.failing is not None:
            log.info("Tempo source %s works again (%d traces fetched)", self.shown, poll.fetched)
        self.failing = error
