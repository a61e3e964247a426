"""Replaying OTLP/JSON lines files into the store, with detection on the data's own clock.

The input is what the OpenTelemetry Collector's file exporter writes: one
``ExportTraceServiceRequest`` (or ``ExportLogsServiceRequest``: each line is
told apart by its content, ``resourceLogs``) in OTLP/JSON per line, optionally
gzipped (recognised by its magic bytes, whatever the file is called).

Log records ride in the same windows as spans, by their own time: a window's
spans and then its log records are inserted (each in time order) before its
cycle runs, so detection sees both signals of a window together. The files of
one recording (a trace file and its logs file) are read with
``new_recording=False`` after the first, then flushed together.

Metric points (``ExportMetricsServiceRequest`` lines) are merged on the same clock: each is stored
before the first cycle whose clock is at or past its time. Points older than a recording's first
span or log window (the history a metrics file keeps from before the traffic) are stored with
that window, so they make no cycles of their own; newer ones after the last window do.

Files are replayed one after the other, in the order given. Inside a file,
lines need not be in time order (exporters batch per service, so one line can
cover minutes), so spans are first grouped into detection windows of
``interval`` seconds of *span start time*: window ``w`` holds the spans that
started in ``[w * interval, (w + 1) * interval)``. When the file is read, the
windows are replayed oldest first: insert the window's spans, then run one
detection cycle with ``now`` at the window's end, exactly what the live
scheduler would have seen. Empty windows between two busy ones get empty
cycles too (at most ``max_idle_cycles`` in a row: enough for quiet incidents to
resolve, not a million cycles over a gap of days).

Memory is bounded by ``max_pending`` spans: past it, the oldest windows are
replayed early, and a span that arrives later for a window already replayed
goes into the next open window (counted as ``late``; detection reads spans by
arrival, so it is still analysed, one cycle later). Each file starts a new
clock, so a file older than the previous one (a fault case after normal
traffic, say) replays as its own period.

A malformed line is reported with its file and line number and skipped; the
rest of the file still replays. Pure logic: the caller passes the functions
that insert rows and run a cycle, so this module knows nothing of Flask.
"""

from __future__ import annotations

import gzip
import json
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from telemetry import otlp, otlp_logs, otlp_metrics
from telemetry.columns import LOG_FIELDS, METRIC_FIELDS, SPAN_FIELDS

Insert = Callable[[Sequence[tuple]], None]
Cycle = Callable[[float], dict | None]
Progress = Callable[[int], None]

START = SPAN_FIELDS.index("start_time")
LOG_TIME = LOG_FIELDS.index("time")
METRIC_TIME = METRIC_FIELDS.index("time")
INSERT_CHUNK = 20_000
GZIP_MAGIC = b"\x1f\x8b"


def file_kind(path: str | Path) -> str:
    """``"logs"`` when the file's first line is an ``ExportLogsServiceRequest`` (``resourceLogs``),
    ``"metrics"`` for an ``ExportMetricsServiceRequest`` (``resourceMetrics``), else ``"traces"``
    (told apart by content, whatever the file is called)."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        try:
            for line in stream:
                if line.strip():
                    try:
                        doc = json.loads(line)
                    except ValueError:
                        return "traces"  # malformed: replay reports it
                    return _KINDS[otlp.json_kind(doc)]
        except (OSError, EOFError, zlib.error):
            pass
    return "traces"


_KINDS = {ExportLogsServiceRequest: "logs", ExportMetricsServiceRequest: "metrics",
          ExportTraceServiceRequest: "traces"}


def recordings(files: Sequence, kind: Callable[[object], str]) -> list[list]:
    """Group files, in the order given, into recordings: runs of consecutive files with at most one
    of each kind (``traces.gz logs.gz traces2.gz logs2.gz`` -> two recordings of two files)."""
    groups: list[list] = []
    kinds: set[str] = set()
    for path in files:
        k = kind(path)
        if not groups or k in kinds:
            groups.append([])
            kinds = set()
        groups[-1].append(path)
        kinds.add(k)
    return groups


@dataclass
class ReplayStats:
    files: int = 0
    lines: int = 0
    bad_lines: int = 0
    spans: int = 0
    rejected: int = 0
    logs: int = 0
    rejected_logs: int = 0
    metric_rows: int = 0  # the numeric series' values stored (a histogram point makes several)
    rejected_points: int = 0
    late: int = 0
    cycles: int = 0
    idle_cycles: int = 0
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def spans_per_second(self) -> float:
        return self.spans / self.seconds if self.seconds > 0 else 0.0


class Replay:
    def __init__(
        self,
        insert: Insert,
        cycle: Cycle,
        interval: float,
        *,
        max_pending: int = 500_000,
        max_idle_cycles: int = 3,
        warn: Callable[[str], None] = lambda message: None,
        insert_logs: Insert | None = None,
        insert_metrics: Insert | None = None,
    ):
        if interval <= 0:
            raise ValueError("the detection interval must be positive")
        self.insert = insert
        self.insert_logs = insert_logs  # None: log lines are counted and skipped
        self.insert_metrics = insert_metrics  # None: metric points are counted and skipped
        self._cumulative = otlp_metrics.Cumulative()  # running totals' last points (their rates)
        self.cycle = cycle
        self.interval = float(interval)
        self.max_pending = max(1, max_pending)
        self.max_idle_cycles = max_idle_cycles
        self.warn = warn
        self.stats = ReplayStats()
        self.summaries: list[dict] = []
        self._pending: dict[int, list[tuple]] = {}
        self._pending_logs: dict[int, list[tuple]] = {}
        self._pending_metrics: dict[int, list[tuple]] = {}
        self._pending_count = 0
        self._last_window: int | None = None  # last window replayed (any file)
        self._file_window: int | None = None  # last window replayed from the current file

    # -- reading ------------------------------------------------------------------

    def read_file(self, path: str | Path, progress: Progress | None = None,
                  new_recording: bool = True) -> None:
        """Read one file's spans and log records into windows (replaying early only under memory
        pressure). ``new_recording=False``: the file belongs with the one read before it (its logs,
        say), so its records may not land in windows that one already replayed.

        ``progress`` is called with the number of file bytes consumed since its last call.
        """
        started = time.perf_counter()
        path = Path(path)
        self.stats.files += 1
        if new_recording:
            self._file_window = None
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            reported = 0
            lineno = 0
            try:
                for lineno, line in enumerate(stream, 1):  # noqa: B007 - used after the loop
                    self._line(path, lineno, line)
                    if progress is not None:
                        pos = raw.tell()
                        progress(pos - reported)
                        reported = pos
            except (OSError, EOFError, zlib.error) as exc:  # a corrupt or truncated .gz
                self.stats.bad_lines += 1
                self.warn(f"{path}:{lineno + 1}: cannot read further ({exc}); "
                          "the rest of the file is skipped")
            self.stats.bytes_read += raw.tell()
            if progress is not None:
                progress(raw.tell() - reported)
        self.stats.seconds += time.perf_counter() - started

    def _line(self, path: Path, lineno: int, line: bytes) -> None:
        if not line.strip():
            return
        self.stats.lines += 1
        try:
            message = otlp.parse_json_any(line)
        except otlp.OtlpError as exc:
            self.stats.bad_lines += 1
            self.warn(f"{path}:{lineno}: skipped: {exc}")
            return
        if isinstance(message, ExportMetricsServiceRequest):
            self._metrics(path, lineno, message)
            return
        logs = isinstance(message, ExportLogsServiceRequest)
        mapped = otlp_logs.to_log_rows(message) if logs else otlp.to_rows(message)
        if mapped.rejected:
            if logs:
                self.stats.rejected_logs += mapped.rejected
            else:
                self.stats.rejected += mapped.rejected
            self.warn(f"{path}:{lineno}: {mapped.error_message}")
        if logs:
            for row in mapped.rows:
                self._add(row, row[LOG_TIME], self._pending_logs)
            self.stats.logs += len(mapped.rows)
        else:
            for row in mapped.rows:
                self._add(row, row[START], self._pending)
            self.stats.spans += len(mapped.rows)
        if self._pending_count > self.max_pending:
            self._replay_oldest(self.max_pending // 2)

    def _metrics(self, path: Path, lineno: int, message) -> None:
        mapped = otlp_metrics.to_metric_rows(message, state=self._cumulative)
        if mapped.rejected:
            self.stats.rejected_points += mapped.rejected
            self.warn(f"{path}:{lineno}: {mapped.error_message}")
        for row in mapped.rows:
            self._add(row, row[METRIC_TIME], self._pending_metrics)
        self.stats.metric_rows += len(mapped.rows)
        if self._pending_count > self.max_pending:
            self._replay_oldest(self.max_pending // 2)

    def _add(self, row: tuple, when: float, pending: dict[int, list[tuple]]) -> None:
        window = math.floor(when / self.interval)
        if self._file_window is not None and window <= self._file_window:
            window = self._file_window + 1
            self.stats.late += 1
        pending.setdefault(window, []).append(row)
        self._pending_count += 1

    # -- replaying ----------------------------------------------------------------

    def pending_cycles(self) -> int:
        """How many cycles :meth:`flush` will run (busy windows and the idle ones between)."""
        return len(self._plan(self._windows()))

    def _windows(self) -> list[int]:
        """The windows to replay: those with spans or log records, and those with metric points
        after the first of them (older points ride with it); all, for metrics alone."""
        busy = self._pending.keys() | self._pending_logs.keys()
        first = min(busy, default=None)
        return sorted(busy | {w for w in self._pending_metrics if first is None or w > first})

    def flush(self, on_cycle: Callable[[], None] | None = None) -> None:
        """Replay every window read so far, oldest first (call after each recording's files)."""
        started = time.perf_counter()
        self._replay(self._windows(), on_cycle)
        self.stats.seconds += time.perf_counter() - started

    def _replay_oldest(self, keep: int) -> None:
        windows = []
        left = self._pending_count
        for window in self._windows():
            if left <= keep:
                break
            windows.append(window)
            left -= (len(self._pending.get(window, ())) + len(self._pending_logs.get(window, ()))
                     + len(self._pending_metrics.get(window, ())))
        self._replay(windows, None)

    def _plan(self, windows: list[int]) -> list[tuple[int, bool]]:
        """(window, busy) in replay order, with capped idle windows filling gaps."""
        plan: list[tuple[int, bool]] = []
        last = self._last_window
        for window in windows:
            if last is not None and window > last + 1:
                for idle in range(last + 1, min(window, last + 1 + self.max_idle_cycles)):
                    plan.append((idle, False))
            plan.append((window, True))
            last = window
        return plan

    def _replay(self, windows: list[int], on_cycle: Callable[[], None] | None) -> None:
        for window, busy in self._plan(windows):
            if busy:
                self._insert(self._pending.pop(window, []), START, self.insert)
                self._insert(self._pending_logs.pop(window, []), LOG_TIME, self.insert_logs)
                due = [w for w in self._pending_metrics if w <= window]
                self._insert([r for w in sorted(due) for r in self._pending_metrics.pop(w)], METRIC_TIME,
                             self.insert_metrics)
                self._file_window = window
            else:
                self.stats.idle_cycles += 1
            summary = self.cycle((window + 1) * self.interval)
            self.stats.cycles += 1
            if summary is not None:
                self.summaries.append(summary)
            self._last_window = window
            if on_cycle is not None:
                on_cycle()

    def _insert(self, rows: list[tuple], key: int, insert: Insert | None) -> None:
        self._pending_count -= len(rows)
        if insert is None:
            return
        rows.sort(key=lambda r: r[key])
        for i in range(0, len(rows), INSERT_CHUNK):
            insert(rows[i : i + INSERT_CHUNK])

    def incident_ids(self) -> list[str]:
        """Incidents the replay's cycles opened or updated, in the order first seen."""
        seen: dict[str, None] = {}
        for summary in self.summaries:
            for key in ("incidents_opened", "incidents_updated"):
                for incident_id in summary.get(key, ()):
                    seen.setdefault(incident_id, None)
        return list(seen)
