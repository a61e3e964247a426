"""``GET /metrics`` under gunicorn with 4 workers: whichever worker answers reports every worker's counts.

Each worker records and writes its own spans; the scrape must add them all up
(``prometheus_client`` multiprocess mode), so the spans it reports recorded
equal the rows in the database, not one worker's share of them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from telemetry.metrics_dir import store_key
from tests.e2e import helpers as h
from tests.e2e.server import ROOT, GunicornServer

pytestmark = pytest.mark.e2e

WORKERS = 4
SCRAPES = 12


def scrape(server: GunicornServer) -> dict:
    # A fresh connection each time, so the scrapes land on different workers.
    r = requests.get(server.url + "/metrics", headers={"Connection": "close"}, timeout=10)
    assert r.status_code == 200, r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def shop_rows(db_file: Path) -> int:
    with sqlite3.connect(db_file) as conn:
        return conn.execute("SELECT count(*) FROM spans WHERE service = 'shop'").fetchone()[0]


def writers(metrics_dir: str) -> set[int]:
    """Pids of the processes that have written counters into the metrics directory."""
    names = os.listdir(metrics_dir) if os.path.isdir(metrics_dir) else []  # made on first use
    return {int(m.group(1)) for f in names if (m := re.fullmatch(r"counter_(\d+)\.db", f))}


def derived_dir(db_file: Path) -> str:
    key = store_key(str(ROOT / "instance"), f"sqlite:///{db_file}")
    return os.path.join(tempfile.gettempdir(), f"aiops-metrics-{os.getuid()}", key)


def _logged_dir(log: Path) -> str:
    found = re.findall(r"metrics directory (\S+)", log.read_text())
    assert found, "gunicorn.conf.py did not log its metrics directory"
    return found[-1]


@pytest.mark.parametrize("config", ["shipped", "none"])
def test_metrics_add_up_every_worker(tmp_path, config):
    """``shipped``: gunicorn.conf.py's hooks make the directory; ``none``: the workers agree on one."""
    db_file = tmp_path / "aiops.db"
    env = h.shop_env(f"sqlite:///{db_file}")
    log_config = tmp_path / "gunicorn-logging.json"
    log_config.write_text(json.dumps(h.LOG_CONFIG))
    args = ["--log-config-json", str(log_config)]
    if config == "none":
        empty = tmp_path / "empty.conf.py"
        empty.write_text("")
        args += ["-c", str(empty)]
        # Without the shipped config nothing migrates before serving: the operator's step.
        subprocess.run([sys.executable, "-m", "flask", "--app", "app", "aiops", "migrate"], cwd=ROOT,
                       env={**os.environ, **env}, check=True, capture_output=True)
    server = GunicornServer(env, workers=WORKERS, threads=h.THREADS, log_path=tmp_path / "server.log",
                            extra_args=args)
    server.start()
    try:
        # Both ways, the workers count where any process of this installation would: the
        # directory derived from the instance folder and the database (telemetry.metrics_dir).
        metrics_dir = derived_dir(db_file)
        if config == "shipped":
            assert _logged_dir(tmp_path / "server.log") == metrics_dir

        # Every worker records (and so counts) part of the traffic.
        h.reach_every_worker(server, lambda: writers(metrics_dir), WORKERS)
        tally = h.checkouts(server.url, 60, threads=6)
        assert tally == {200: 60}, tally
        summary = h.analyze(server)  # flushes every worker's buffer, then one cycle
        assert summary["spans"] > 0

        rows = shop_rows(db_file)
        assert rows >= 60 * 3  # checkout, payment, inventory (and checkout's client spans)
        assert len(writers(metrics_dir)) >= WORKERS
        for _ in range(SCRAPES):
            sample = scrape(server)
            assert sample[("aiops_spans_recorded_total", (("service", "shop"),))] == rows
            assert sample[("aiops_spans_written_total", ())] >= rows
            assert sample[("aiops_spans_dropped_total", ())] == 0
            assert sample[("aiops_store_errors_total", (("source", "recorder"),))] == 0
            # One cycle ran, in whichever worker served /aiops/analyze: every worker reports it.
            assert sample[("aiops_detection_cycle_duration_seconds_count", ())] == 1
    finally:
        server.stop()
    if config == "none":  # workers leaving at once each see the others still there: the next start cleans
        shutil.rmtree(metrics_dir, ignore_errors=True)
    else:  # the master leaves last
        assert not os.path.exists(metrics_dir), "the master did not remove the metrics directory"
