"""OTLP/JSON log files for the benches, and a log feed that serves them on the replay's clock.

A stand-in until the product replays log files itself: the OTLP logs decoder
of the ingest (``POST /v1/logs``) should replace :func:`read` and the log
store's feed should replace :class:`PeriodFeed`. Each file is one period, as
``flask aiops replay`` makes each trace file its own recording: the feed
serves a period's lines up to each cycle's clock, and moves to the next
period when the clock jumps back (the next file's older clock) or passes the
period's end. The trace and log windows are then the same windows.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from aiops.logsignals import LogRecord


def _attrs(items: list) -> dict:
    return {a.get("key"): next(iter((a.get("value") or {}).values()), None) for a in items or ()}


def read(path: Path) -> list[LogRecord]:
    """The records of one OTLP/JSON lines file (one ExportLogsServiceRequest a line), time order."""
    out: list[LogRecord] = []
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as lines:
        for line in lines:
            if not line.strip():
                continue
            for rl in json.loads(line).get("resourceLogs", []):
                resource = _attrs(rl.get("resource", {}).get("attributes"))
                service = str(resource.get("service.name") or "unknown")
                for sl in rl.get("scopeLogs", []):
                    for r in sl.get("logRecords", []):
                        body = r.get("body") or {}
                        text = body.get("stringValue")
                        if text is None:
                            text = json.dumps(body)
                        t = int(r.get("timeUnixNano") or r.get("observedTimeUnixNano") or 0) / 1e9
                        out.append(LogRecord(t, service, int(r.get("severityNumber") or 0), text,
                                             r.get("traceId") or None, r.get("spanId") or None))
    out.sort(key=lambda r: r.time)
    return out


class PeriodFeed:
    """Serves each period's lines up to the cycle's clock; see the module docstring."""

    def __init__(self, periods: list[list[LogRecord]]):
        self.periods = [p for p in periods]
        self.current = 0
        self.pos = 0
        self.last: float | None = None

    def take(self, until: float) -> list[LogRecord]:
        if self.current < len(self.periods) and self._next_file(until):
            self.current, self.pos = self.current + 1, 0
        if self.current >= len(self.periods):
            return []
        self.last = until
        period = self.periods[self.current]
        start = self.pos
        while self.pos < len(period) and period[self.pos].time < until:
            self.pos += 1
        return period[start:self.pos]

    def _next_file(self, until: float) -> bool:
        """Has the replay moved to the next file? Its clock jumped back (an older file), or this
        period is served and the next one is later (a newer file)."""
        if self.last is None or self.current + 1 >= len(self.periods):
            return False
        if until < self.last:
            return True
        following = self.periods[self.current + 1]
        served = self.pos >= len(self.periods[self.current])
        return served and bool(following) and following[0].time >= self.last
