"""The fault lab end to end: the real command, its quick configuration, real processes on loopback.

``python -m bench.faultlab run --quick`` starts the product under gunicorn on a
fresh SQLite database, eight traced services each behind its sidecar, steady
traffic, and injects a few faults one at a time while the product's own
scheduler detects them. The test checks the lab's promises (a report, ground
truth for each fault as it happened, no process left behind) and the
product's: each fault detected, the faulty service among the top 3 candidates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import environment

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "bench" / "faultlab" / "topologies" / "ci.toml"
FAULTS = ["exception", "down", "delay-answers"]

pytestmark = pytest.mark.e2e


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line or environment contains ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                if text.encode() in (entry / part).read_bytes():
                    found.append(int(entry.name))
                    break
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faultlab")
    report, workdir = tmp / "report.json", tmp / "work"
    env = environment.clean()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.faultlab", "run", "--topology", str(TOPOLOGY), "--quick",
         "--faults", ",".join(FAULTS), "--report", str(report), "--workdir", str(workdir), "--seed", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    return proc, report, workdir


def test_the_run_succeeds_and_writes_a_report_with_a_row_per_fault(run):
    proc, report, _ = run
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(report.read_text())
    assert [row["type"] for row in data["faults"]] == FAULTS
    assert set(data["summary"]) == {*FAULTS, "all"}
    assert "AC@1" in proc.stdout and "fault-free period" in proc.stdout
    assert data["traffic"].get("200", 0) > 100, data["traffic"]


def test_ground_truth_is_written_for_each_fault_as_it_happens(run):
    _, report, _ = run
    lines = [json.loads(line) for line in report.with_name("report.truth.jsonl").read_text().splitlines()]
    by_id: dict[int, list[dict]] = {}
    for line in lines:
        by_id.setdefault(line["id"], []).append(line)
    assert sorted(by_id) == [1, 2, 3]
    for records in by_id.values():
        injected, cleared = records  # one line at injection, one at the clear
        assert injected["cleared_at"] is None and injected["target"] == cleared["target"]
        assert injected["injected_at"] == cleared["injected_at"] < cleared["cleared_at"]
        assert cleared["type"] in FAULTS and cleared["variant"]


def test_every_child_process_is_gone_afterwards(run):
    _, _, workdir = run
    assert (workdir / "ports.json").exists()
    assert processes_mentioning(str(workdir)) == []


def test_each_fault_is_detected_with_the_faulty_service_in_the_top_3(run):
    _, report, _ = run
    rows = json.loads(report.read_text())["faults"]
    missed = [(r["type"], r["target"], r["ranking"]) for r in rows if not (r["detected"] and r["ac3"])]
    assert missed == [], f"faults not detected or not in the top 3: {missed}"
