"""Replaying log files beside trace files: told apart by content, merged on the data's own clock."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from telemetry import otlp
from telemetry.replay import file_kind, recordings
from tests.support.factories import log_record as make_record
from tests.support.factories import logs_request
from tests.support.replay_files import EPOCH, INTERVAL, Recorder, write_lines

TRACE = "0af7651916cd43dd8448eb211c80319c"


def write_logs(path: Path, windows: range, per_window: int = 4) -> None:
    """Log lines for each window (one line per window, shuffled), named like nothing in particular."""
    lines = []
    for window in windows:
        records = [make_record(i + 1, time_ns=int((EPOCH + window * INTERVAL + 1 + i) * 1e9),
                               body=f"order {window}-{i} failed") for i in range(per_window)]
        lines.append(json.dumps(otlp.to_json_dict(logs_request({"db-service": records}))))
    random.Random(5).shuffle(lines)
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


class LogRecorder(Recorder):
    def insert_logs(self, rows):
        self.events.append(("logs", len(rows), min(r[0] for r in rows), max(r[0] for r in rows)))

    def replay(self, **kw):
        return super().replay(insert_logs=self.insert_logs, **kw)


def test_logs_ride_in_the_windows_of_the_spans_before_each_cycle(tmp_path):
    traces, logs = tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"
    write_lines(traces, [(w, 20.0) for w in range(3)])
    write_logs(logs, range(1, 4))  # one window past the traces
    rec = LogRecorder()
    player = rec.replay()
    player.read_file(traces)
    player.read_file(logs, new_recording=False)
    player.flush()
    kinds = [e[0] for e in rec.events]
    assert kinds == ["insert", "cycle", "insert", "logs", "cycle", "insert", "logs", "cycle", "logs", "cycle"]
    for i, event in enumerate(e for e in rec.events if e[0] == "logs"):
        window = i + 1
        assert event[1] == 4
        assert EPOCH + window * INTERVAL <= event[2] <= event[3] < EPOCH + (window + 1) * INTERVAL
    assert (player.stats.spans, player.stats.logs, player.stats.late) == (3 * 75, 12, 0)


def test_files_are_told_apart_by_content_and_grouped_into_recordings(tmp_path):
    t1, l1, t2, l2, t3 = (tmp_path / n for n in ("x.gz", "y.jsonl", "z.jsonl", "w.gz", "v.jsonl"))
    for path in (t1, t2, t3):
        write_lines(path, [(0, 20.0)])
    for path in (l1, l2):
        write_logs(path, range(1))
    assert [file_kind(p) for p in (t1, l1, t2, l2)] == ["traces", "logs", "traces", "logs"]
    assert recordings([t1, l1, t2, l2, t3], file_kind) == [[t1, l1], [t2, l2], [t3]]
    assert recordings([l1, t1, t2], file_kind) == [[l1, t1], [t2]]


def test_replay_command_stores_logs_merged_with_traces(app, tmp_path):
    from sqlalchemy import select

    from telemetry.db import db
    from telemetry.models import LogRecord

    traces, logs = tmp_path / "traces.jsonl.gz", tmp_path / "logs.jsonl"
    write_lines(traces, [(w, 20.0) for w in range(3)])
    write_logs(logs, range(3))
    result = app.test_cli_runner().invoke(args=["aiops", "replay", str(traces), str(logs)])
    assert result.exit_code == 0, result.output
    assert "replayed 225 spans from 2 file(s)" in result.stderr
    assert "12 log records (0 rejected)" in result.stderr
    with app.app_context():
        rows = db.session.scalars(select(LogRecord).order_by(LogRecord.id)).all()
        assert len(rows) == 12 and {r.trace_id for r in rows} == {TRACE}
        assert [r.time for r in rows] == sorted(r.time for r in rows)  # replay keeps the data's clock
        assert rows[0].time == EPOCH + 1 + 1e-9  # 2023: live ingest would refuse it, replay does not
        db.session.remove()

