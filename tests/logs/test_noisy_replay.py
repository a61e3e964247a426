"""Normal traffic with noisy but normal logs raises no incident: the real replay command, the logs of
``bench/noisy_logs.py`` (volume swings, retry warnings in bursts, rare templates never seen before)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from tests.support.replay_files import write_lines

BENCH = Path(__file__).resolve().parents[2] / "bench" / "noisy_logs.py"
_spec = importlib.util.spec_from_file_location("noisy_logs_under_test", BENCH)
noisy_logs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(noisy_logs)


def write_gz(requests, path: Path) -> None:
    import gzip

    with gzip.open(path, "wt") as f:
        for r in requests:
            f.write(json.dumps(r) + "\n")


def test_normal_traffic_with_noisy_logs_raises_no_incident(app, tmp_path):
    traces, logs = tmp_path / "traces.jsonl", tmp_path / "logs.jsonl.gz"
    lines = write_lines(traces, [(w, 20.0) for w in range(24)], shuffle=False)
    requests = [json.loads(line) for line in lines]
    noisy = {"orders", "db-service"}
    written = noisy_logs.write_noisy_logs(requests, "test", noisy, logs, write_gz)
    per_service = noisy_logs.lines_for(requests, "test", noisy)
    rare = {
        r["body"]["stringValue"].rsplit(" id ", 1)[0]
        for r in per_service["orders"]
        if " id " in r["body"]["stringValue"]
    }
    assert written > 1000 and len(rare) >= 3  # the logs do swing: templates never seen before, in bursts
    result = app.test_cli_runner().invoke(args=["aiops", "replay", str(traces), str(logs)])
    assert result.exit_code == 0, result.output
    assert "no incidents" in result.output, result.output
    body = app.test_client().get("/aiops/incidents").get_json()
    assert body["active_incidents"] == [] and body["resolved_incidents"] == []
