"""Where the detection cycle gets its log lines, and what it remembers of them.

A *feed* hands the cycle the log lines it has not seen yet, up to the cycle's
clock (``take(until)``). The app has none until one is registered with
:func:`register` (the log store registers one once logs are ingested; the
TrainTicket bench registers a file-backed one), and a cycle without a feed is
the trace-only cycle, unchanged. The template miner and the log baselines
live with the feed's state for the life of the process (the single worker),
so template ids stay stable from cycle to cycle; :meth:`LogMemory.state` and
:meth:`LogMemory.restore` carry them across restarts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from aiops.detection.rules import is_timeout
from aiops.detection.selftime import SpanIndex
from aiops.logs import clues as logrca
from aiops.logs import signals as ls
from aiops.logs.mining import TemplateMiner
from telemetry.columns import KIND_SERVER
from telemetry.rows import span_key

EXTENSION = "aiops.log_feed"
RELEARN_WEIGHT = 0.5  # as the trace baselines' (aiops.jobs.cycle)


class LogFeed(Protocol):
    def take(self, until: float) -> list[ls.LogRecord]:
        """The lines not taken before, up to ``until`` (the cycle's clock)."""


@dataclass
class LogMemory:
    miner: TemplateMiner = field(default_factory=TemplateMiner)
    base: ls.LogBaselines = field(default_factory=ls.LogBaselines)
    rules: ls.LogRules = field(default_factory=ls.LogRules)

    def state(self) -> dict:
        return {"miner": self.miner.state(), "base": self.base}

    @classmethod
    def restore(cls, state: dict, rules: ls.LogRules | None = None) -> LogMemory:
        return cls(TemplateMiner(state.get("miner")), state.get("base") or ls.LogBaselines(),
                   rules or ls.LogRules())


@dataclass
class Registered:
    feed: LogFeed
    memory: LogMemory = field(default_factory=LogMemory)
    version: int | None = None  # of the saved memory this one continues (aiops.logs.storage); None: unsaved


class StoreFeed:
    """The log store as a feed: the rows committed since the last take, oldest first.

    The first take starts at rows no older than ``LOOKBACK`` before the
    cycle's clock (a worker that restarts does not re-judge history; a replay
    into an empty store reads everything). Rows are read by id, up to the
    highest id every writer has committed (``telemetry.store.max_span_id``),
    so a row still being written is taken next time, never skipped.
    """

    BATCH = 200_000  # rows one cycle reads at most (the rest wait for the next)
    LOOKBACK = 300.0  # seconds of already stored lines the first take still reads

    def __init__(self):
        self.cursor: int | None = None
        self.resumed = 0  # where the saved log memory stopped reading (aiops.logs.storage)

    def resume(self, cursor: int | None) -> None:
        """Continue after ``cursor`` (a restart, or another process ran the last cycles); the
        next take still skips lines older than ``LOOKBACK``."""
        self.cursor, self.resumed = None, cursor or 0

    def take(self, until: float) -> list[ls.LogRecord]:
        from sqlalchemy import func, select

        from telemetry import store
        from telemetry.db import db
        from telemetry.models import LogRecord as Row

        upto = store.max_span_id(model=Row)
        if self.cursor is None:
            older = select(func.max(Row.id)).where(Row.time < until - self.LOOKBACK)
            self.cursor = max(db.session.scalar(older) or 0, self.resumed)
        if upto <= self.cursor:
            return []
        rows = store.logs_after(self.cursor, upto, self.BATCH)
        if rows:
            self.cursor = rows[-1][0]
        record = ls.LogRecord
        return [record(at, service, severity or 0, body or "", trace_id, span_id, row_id)
                for row_id, at, service, severity, body, trace_id, span_id in rows]


def register(app, feed: LogFeed, memory: LogMemory | None = None) -> None:
    app.extensions[EXTENSION] = Registered(feed, memory or LogMemory())


def registered(app) -> Registered | None:
    return app.extensions.get(EXTENSION)


def judge(reg: Registered | None, now: float, window: list, anomalies: Iterable,
          mode: str = "normal") -> ls.LogWindow | None:
    """Judge the feed's new lines against what the logs usually say, and learn from the services
    whose logs did not change; while the traces relearn (``mode`` not normal: data resumed after a
    silence) from every service, at the relearning weight. None without a feed."""
    if reg is None:
        return None
    records = reg.feed.take(now)
    abnormal = {s.trace_id for s in window if s.error or is_timeout(s)}
    for a in anomalies:
        abnormal.update(s.trace_id for s in (*a.evidence, *a.shown_by))
    mem = reg.memory
    served: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s in window:
        if s.kind == KIND_SERVER:
            served[(s.service, s.endpoint)].append(s.span_id)
    traffic = {key[0]: 0 for key in served}
    for key, spans in served.items():
        traffic[key[0]] += len(spans)
    entry_of = _entries(window) if records else None  # no lines: no index of the spans to build
    logs = ls.judge(records, mem.miner, mem.base, mem.rules, abnormal, traffic, entry_of, served)
    watched = set(mem.base.windows) | {r.service for r in records}
    if mode == "normal":
        ls.learn(mem.base, logs, watched, mem.rules, skip=logs.suspects, traffic=traffic)
    else:
        ls.learn(mem.base, logs, watched, mem.rules, weight=RELEARN_WEIGHT, traffic=traffic)
    return logs


def _entries(window: list):
    """A line's ``(endpoint, request)``: the SERVER span of its service it ran under, if in ``window``."""
    index = SpanIndex(window)

    def entry_of(record: ls.LogRecord):
        span = index.by_id.get((record.trace_id or "", record.span_id or ""))
        if span is None:
            return None
        entry = index.entry_span(span)
        return span_key(entry), entry.span_id

    return entry_of


def anomalies(logs: ls.LogWindow | None, window: list, found: list) -> list:
    """Anomalies raised by logs alone, for services no trace anomaly names."""
    if logs is None or not logs.suspects:
        return []
    return logrca.anomalies(logs, logrca.suspect_keys(logs, window), window, {a.service for a in found})
