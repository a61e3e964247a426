"""Replaying metrics files beside trace files (``ExportMetricsServiceRequest`` lines): told apart by
content, merged on the data's own clock; the history a metrics file keeps from before the traffic
rides with the first window, so it makes no cycles of its own. And through the real CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from sqlalchemy import select

from telemetry import otlp
from telemetry.db import db
from telemetry.models import MetricPoint
from telemetry.replay import file_kind, recordings
from tests.support.replay_files import EPOCH, INTERVAL, Recorder, write_lines
from tests.telemetry.test_otlp_metrics import counter, request


def gauge(value: float, at: float) -> m.Metric:
    point = m.NumberDataPoint(as_double=value, time_unix_nano=int(at * 1e9))
    return m.Metric(name="k8s.pod.cpu.usage", gauge=m.Gauge(data_points=[point]))


def write_metrics(path: Path, times: list[float]) -> None:
    """One line per point (a gauge and a running total), in time order as an exporter appends them."""
    lines = [
        json.dumps(
            otlp.to_json_dict(
                request(gauge(0.2, t), counter(int(t - EPOCH) * 10, int(t), start=int(EPOCH) - 600))
            )
        )
        for t in sorted(times)
    ]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


class MetricRecorder(Recorder):
    def insert_metrics(self, rows):
        self.events.append(("metrics", len(rows), min(r[0] for r in rows), max(r[0] for r in rows)))

    def replay(self, **kw):
        return super().replay(insert_metrics=self.insert_metrics, **kw)


def test_metric_points_ride_in_the_windows_of_their_time(tmp_path):
    traces, metrics = tmp_path / "a.jsonl", tmp_path / "b.metrics.gz"
    write_lines(traces, [(w, 20.0) for w in range(3)])
    # Ten minutes of history before the traffic, one point in its second window, one after it.
    history = [EPOCH - 600 + 60 * i for i in range(10)]
    write_metrics(metrics, [*history, EPOCH + INTERVAL + 1, EPOCH + 4 * INTERVAL + 1])
    rec = MetricRecorder()
    player = rec.replay()
    player.read_file(traces)
    player.read_file(metrics, new_recording=False)
    player.flush()
    kinds = [e[0] for e in rec.events]
    assert kinds == [
        "insert",
        "metrics",
        "cycle",
        "insert",
        "metrics",
        "cycle",
        "insert",
        "cycle",
        "cycle",
        "metrics",
        "cycle",
    ]
    first = rec.events[1]
    assert first[2] == history[0] and first[3] == history[-1]  # the history, before the first cycle
    assert rec.events[4][2] == EPOCH + INTERVAL + 1
    assert player.stats.cycles == 5 and player.stats.idle_cycles == 1
    # A gauge and a running total per point, and the total's rate from the second point on.
    assert player.stats.metric_rows == 12 * 2 + 11


def test_metrics_files_are_told_apart_by_content(tmp_path):
    traces, metrics, traces2 = tmp_path / "x.jsonl", tmp_path / "y.gz", tmp_path / "z.jsonl"
    write_lines(traces, [(0, 20.0)])
    write_lines(traces2, [(0, 20.0)])
    write_metrics(metrics, [EPOCH])
    assert file_kind(metrics) == "metrics"
    assert recordings([traces, metrics, traces2], file_kind) == [[traces, metrics], [traces2]]


def test_the_cli_replays_a_metrics_file_into_the_store(app, tmp_path):
    traces, metrics = tmp_path / "t.jsonl", tmp_path / "m.jsonl"
    write_lines(traces, [(w, 20.0) for w in range(2)])
    write_metrics(metrics, [EPOCH - 120, EPOCH - 60, EPOCH + 1])
    result = app.test_cli_runner().invoke(args=["aiops", "replay", str(traces), str(metrics)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        names = sorted(db.session.scalars(select(MetricPoint.name)))
    assert names.count("k8s.pod.cpu.usage") == 3 and names.count("http.requests.rate") == 2
