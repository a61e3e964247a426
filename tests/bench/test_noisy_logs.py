"""The noisy but normal logs of ``bench/noisy_logs.py`` (no replay): stationary, seeded, on the traces'
own ids, and noisy only where chosen."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from tests.support.replay_files import write_lines

BENCH = Path(__file__).resolve().parents[2] / "bench" / "noisy_logs.py"
_spec = importlib.util.spec_from_file_location("noisy_logs_for_bench_tests", BENCH)
noisy_logs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(noisy_logs)


def traces(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in write_lines(tmp_path / "t.jsonl", [(w, 20.0) for w in range(6)])]


def test_the_same_seed_gives_the_same_noise_and_a_third_of_the_services_are_noisy(tmp_path):
    services = [f"svc-{i}" for i in range(9)]
    assert noisy_logs.noisy_services(services, "1") == noisy_logs.noisy_services(services, "1")
    assert len(noisy_logs.noisy_services(services, "1")) == 3
    requests = traces(tmp_path)
    assert noisy_logs.lines_for(requests, "1", {"orders"}) == noisy_logs.lines_for(requests, "1", {"orders"})


def test_a_steady_service_logs_one_line_per_request_and_a_noisy_one_swings(tmp_path):
    requests = traces(tmp_path)
    spans = {
        s["spanId"]
        for r in requests
        for rs in r["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
        if s["kind"] == noisy_logs.SERVER
    }
    per = noisy_logs.lines_for(requests, "1", {"orders"})
    assert len(per["db-service"]) == 6 * 15 and all(r["spanId"] in spans for r in per["db-service"])
    assert len(per["orders"]) > 2 * 6 * 15
    assert {r["severityText"] for r in per["orders"]} >= {"INFO", "WARN"}
    assert all(r.get("spanId", "") in spans | {""} for r in per["orders"])  # the traces' ids, or none
