"""Replaying OTLP/JSON lines files: the Replay engine (pure) and ``flask aiops replay``."""

from __future__ import annotations

import gzip
import json
import math

import pytest

from telemetry import otlp
from tests.support import environment
from tests.support.factories import make_request, make_span
from tests.support.replay_files import EPOCH, INTERVAL, TRAINTICKET, Recorder, write_lines

# -- the engine ---------------------------------------------------------------------------


def test_windows_replay_in_time_order_with_cycles_at_window_ends(tmp_path):
    path = tmp_path / "traces.jsonl"
    write_lines(path, [(w, 20.0) for w in range(4)])
    rec = Recorder()
    rec.fault_at = EPOCH + 2 * INTERVAL
    player = rec.replay()
    player.read_file(path)
    assert rec.events == []  # nothing replayed before the file is read (lines are out of order)
    assert player.pending_cycles() == 4
    player.flush()
    cycles = [e[1] for e in rec.events if e[0] == "cycle"]
    assert cycles == [EPOCH + (w + 1) * INTERVAL for w in range(4)]
    # Each window's spans are inserted before its cycle, and only that window's.
    for i in range(4):
        kind, n, lo, hi = rec.events[2 * i]
        assert kind == "insert" and n == 15 * 5
        assert EPOCH + i * INTERVAL <= lo <= hi < EPOCH + (i + 1) * INTERVAL
    assert player.stats.spans == 4 * 15 * 5 and player.stats.lines == 12
    assert player.incident_ids() == [f"INC-{int(EPOCH + 2 * INTERVAL)}"]


def test_idle_cycles_fill_gaps_but_are_capped(tmp_path):
    path = tmp_path / "traces.jsonl"
    write_lines(path, [(0, 20.0), (2, 20.0), (100, 20.0)])
    rec = Recorder()
    player = rec.replay(max_idle_cycles=3)
    player.read_file(path)
    player.flush()
    windows = [round(e[1] / INTERVAL - EPOCH / INTERVAL) - 1 for e in rec.events if e[0] == "cycle"]
    assert windows == [0, 1, 2, 3, 4, 5, 100]
    assert player.stats.idle_cycles == 4


def test_malformed_line_is_reported_and_skipped(tmp_path):
    path = tmp_path / "traces.jsonl.gz"
    write_lines(path, [(0, 20.0), (1, 20.0)], malformed_at=3)
    rec = Recorder()
    player = rec.replay()
    player.read_file(path)
    player.flush()
    assert player.stats.bad_lines == 1 and player.stats.spans == 2 * 15 * 5
    assert len(rec.warnings) == 1 and rec.warnings[0].startswith(f"{path}:3: skipped: body is not valid JSON")


def test_invalid_spans_in_a_line_are_reported(tmp_path):
    good = otlp.to_json_dict(make_request({"s": [make_span(1, start_ns=int(EPOCH * 1e9))]}))
    bad = otlp.to_json_dict(make_request({"s": [make_span(2, trace_id=b"\x01", start_ns=int(EPOCH * 1e9))]}))
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n")
    rec = Recorder()
    player = rec.replay()
    player.read_file(path)
    player.flush()
    assert (player.stats.spans, player.stats.rejected, player.stats.lines) == (1, 1, 2)
    assert rec.warnings == [f"{path}:3: 1 span(s) rejected: 1 x invalid trace_id "
                            "(need 16 bytes, 32 hex digits, not all zero)"]


def test_memory_bound_replays_oldest_windows_early(tmp_path):
    path = tmp_path / "traces.jsonl"
    write_lines(path, [(w, 20.0) for w in range(6)], shuffle=False)
    rec = Recorder()
    player = rec.replay(max_pending=100)  # fewer than two windows' spans
    player.read_file(path)
    assert any(e[0] == "cycle" for e in rec.events)  # replayed while reading
    player.flush()
    inserted = sum(e[1] for e in rec.events if e[0] == "insert")
    assert inserted == player.stats.spans == 6 * 15 * 5
    cycles = [e[1] for e in rec.events if e[0] == "cycle"]
    assert cycles == sorted(cycles) and len(cycles) == 6


def test_gzip_by_magic_progress_and_truncated_file(tmp_path):
    good = tmp_path / "a.otlp"  # gzipped, whatever the name says
    good.write_bytes(gzip.compress(b"\n".join(
        json.dumps(otlp.to_json_dict(make_request({"s": [make_span(i + 1, start_ns=int(EPOCH * 1e9))]})))
        .encode() for i in range(50))))
    broken = tmp_path / "b.jsonl.gz"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    rec = Recorder()
    player = rec.replay()
    seen = []
    player.read_file(good, progress=seen.append)
    assert sum(seen) == good.stat().st_size and player.stats.spans == 50
    player.read_file(broken)
    player.flush()
    assert 50 <= player.stats.spans < 100  # what decoded before the cut (maybe nothing) is kept
    assert rec.warnings and "cannot read further" in rec.warnings[-1] and str(broken) in rec.warnings[-1]


def test_a_later_file_may_be_older(tmp_path):
    """Files replay in the order given, each on its own clock (normal traffic, then an older case)."""
    newer, older = tmp_path / "normal.jsonl", tmp_path / "case.jsonl"
    write_lines(newer, [(10, 20.0), (11, 20.0)])
    write_lines(older, [(0, 20.0)])
    rec = Recorder()
    player = rec.replay()
    for path in (newer, older):
        player.read_file(path)
        player.flush()
    cycles = [e[1] for e in rec.events if e[0] == "cycle"]
    assert cycles == [EPOCH + 11 * INTERVAL, EPOCH + 12 * INTERVAL, EPOCH + INTERVAL]
    assert player.stats.late == 0


# -- flask aiops replay -----------------------------------------------------------------


def test_replay_command_finds_the_fault_on_the_data_clock(app, tmp_path):
    from sqlalchemy import func, select

    from aiops.store.models import DetectionState
    from telemetry.db import db
    from telemetry.models import Span

    path = tmp_path / "system.otlp.jsonl.gz"
    # 5 normal windows, then db-service slows from 20 ms to 400 ms for 2 windows.
    write_lines(path, [(w, 20.0) for w in range(5)] + [(5, 400.0), (6, 400.0)], malformed_at=4)
    report = tmp_path / "report.json"
    result = app.test_cli_runner().invoke(args=["aiops", "replay", str(path), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert f"{path}:4: skipped" in result.stderr
    assert "replayed 525 spans from 1 file(s), 22 lines (1 malformed" in result.stderr

    incidents = json.loads(report.read_text())["incidents"]
    assert len(incidents) == 1, incidents
    incident = incidents[0]
    root = incident["root_cause"]
    assert (root["service"], root["endpoint"]) == ("db-service", "GET /rows")
    fault_cycle = EPOCH + 6 * INTERVAL  # the end of the first faulty window, in 2023
    from aiops.store.models import iso

    assert incident["first_detected"] == iso(fault_cycle)
    assert incident["id"] in result.stdout and "db-service / GET /rows" in result.stdout

    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Span)) == 525
        assert db.session.get(DetectionState, 1).cycles == 7
        db.session.remove()


def test_replay_command_without_incidents_and_bad_arguments(app, tmp_path):
    path = tmp_path / "calm.jsonl"
    write_lines(path, [(w, 20.0) for w in range(3)])
    runner = app.test_cli_runner()
    result = runner.invoke(args=["aiops", "replay", str(path)])
    assert result.exit_code == 0 and "no incidents" in result.stdout
    missing = runner.invoke(args=["aiops", "replay", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert runner.invoke(args=["aiops", "replay"]).exit_code == 2


@pytest.mark.slow
def test_trainticket_normal_replays_without_error(app, tmp_path):
    if not TRAINTICKET.exists():
        reason = f"{TRAINTICKET} not found (shared/ datasets sit beside the clone)"
        if environment.flag("REQUIRE_DATASETS"):
            pytest.fail(f"{reason}; AIOPS_TEST_REQUIRE_DATASETS=1 makes this a failure")
        pytest.skip(reason)
    report = tmp_path / "report.json"
    result = app.test_cli_runner().invoke(args=["aiops", "replay", str(TRAINTICKET), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert ("replayed 4890 spans from 1 file(s), 29 lines (0 malformed, 0 spans rejected, 0 late)"
            in result.stderr)
    doc = json.loads(report.read_text())
    assert isinstance(doc["incidents"], list)
    from sqlalchemy import func, select

    from aiops.store.models import DetectionState
    from telemetry.db import db
    from telemetry.models import Span

    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Span)) == 4890
        span_minutes = db.session.execute(select(func.min(Span.start_time), func.max(Span.start_time))).one()
        cycles = db.session.get(DetectionState, 1).cycles
        db.session.remove()
    first, last = span_minutes
    assert cycles >= math.floor(last / INTERVAL) - math.floor(first / INTERVAL)
