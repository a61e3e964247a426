"""Replay test material: a small three-service system written as OTLP/JSON lines, and a recorder
of what a replay did (shared by the trace and log replay tests)."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from telemetry import otlp
from telemetry.columns import KIND_CLIENT, KIND_SERVER, SPAN_FIELDS
from telemetry.replay import Replay
from tests.conftest import ROOT
from tests.support.factories import make_request, make_span

INTERVAL = 30.0
EPOCH = 1_674_982_080  # a multiple of 30 s, in January 2023
TRAINTICKET = ROOT.parent / "shared" / "datasets" / "trainticket" / "normal.otlp.jsonl.gz"
START = SPAN_FIELDS.index("start_time")


def system_traces(window: int, count: int, db_ms: float, seed: int) -> dict[str, list]:
    """``count`` traces frontend -> orders -> db-service starting inside ``window``."""
    rng = random.Random(seed)
    by_service: dict[str, list] = {"frontend": [], "orders": [], "db-service": []}
    for i in range(count):
        t = int((EPOCH + window * INTERVAL + rng.uniform(0, INTERVAL - 1)) * 1e9)
        trace = f"{seed:08x}{window:08x}{i:016x}"
        ids = [f"{(seed << 40) + (window << 20) + i * 8 + k + 1:016x}" for k in range(5)]
        dur = db_ms + rng.uniform(-2, 2)
        ms = 1_000_000

        def span(k, parent, name, kind, start, length, trace=trace, ids=ids, **attrs):
            return make_span(trace=trace, span_id=bytes.fromhex(ids[k]), parent=parent, name=name,
                             kind=kind, start_ns=start, dur_ms=length, attrs=attrs)

        by_service["frontend"] += [
            span(0, None, "GET /checkout", KIND_SERVER, t, dur + 12, **{
                "http.route": "/checkout", "http.request.method": "GET", "http.response.status_code": 200}),
            span(1, ids[0], "POST", KIND_CLIENT, t + 2 * ms, dur + 8, **{"peer.service": "orders"}),
        ]
        by_service["orders"] += [
            span(2, ids[1], "POST /orders", KIND_SERVER, t + 3 * ms, dur + 5, **{
                "http.route": "/orders", "http.request.method": "POST"}),
            span(3, ids[2], "GET", KIND_CLIENT, t + 5 * ms, dur + 1, **{"server.address": "db-service"}),
        ]
        by_service["db-service"] += [
            span(4, ids[3], "GET /rows", KIND_SERVER, t + 6 * ms, dur, **{
                "http.route": "/rows", "http.request.method": "GET"}),
        ]
    return by_service


def write_lines(path: Path, windows: list[tuple[int, float]], per_window: int = 15,
                malformed_at: int | None = None, shuffle: bool = True) -> list[str]:
    """An OTLP/JSON lines file, one line per service and window, lines in shuffled order."""
    lines = []
    for window, db_ms in windows:
        for service, spans in system_traces(window, per_window, db_ms, seed=7).items():
            lines.append(json.dumps(otlp.to_json_dict(make_request({service: spans}))))
    if shuffle:
        random.Random(3).shuffle(lines)
    if malformed_at is not None:
        lines.insert(malformed_at - 1, '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": ')
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return lines


class Recorder:
    """Fake insert and cycle functions that log what the replay did, in order."""

    def __init__(self):
        self.events: list[tuple] = []
        self.warnings: list[str] = []

    def insert(self, rows):
        self.events.append(("insert", len(rows), min(r[START] for r in rows), max(r[START] for r in rows)))

    def cycle(self, now):
        self.events.append(("cycle", now))
        return {"incidents_opened": [f"INC-{int(now)}"] if now == self.fault_at else [],
                "incidents_updated": []}

    fault_at = None

    def replay(self, **kw) -> Replay:
        return Replay(self.insert, self.cycle, INTERVAL, warn=self.warnings.append, **kw)
