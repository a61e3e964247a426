"""One job per process: gunicorn serves, ``flask aiops worker`` runs the scheduled work,
and ``python app.py`` is still the whole demo in one process.

- gunicorn's master migrates a fresh database before it forks (no request does);
- no web worker starts a scheduler; the worker process runs every cycle;
- ``POST /aiops/analyze`` is answered by the worker (it rings, the worker runs the
  cycle and writes the answer), and still works once the worker has stopped;
- the worker stops cleanly on SIGTERM;
- ``python app.py`` migrates, runs scheduled cycles in its own process and serves the demo.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from aiops.store.models import CycleRequest, DetectionCycle, WorkerHeartbeat
from tests.e2e import helpers as h
from tests.e2e.server import ROOT, free_port
from tests.support import environment

pytestmark = pytest.mark.e2e

SCHEDULER_STARTED = re.compile(r"detection scheduler started in pid (\d+)")
BOOTED = re.compile(r"Booting worker with pid: (\d+)")


def _rows(db_url: str, model, order=None) -> list:
    engine = sa.create_engine(db_url)
    try:
        with Session(engine) as session:
            rows = list(session.scalars(sa.select(model).order_by(order or sa.text("1"))))
            session.expunge_all()
            return rows
    finally:
        engine.dispose()


def _pid(owner: str) -> int:
    return int(owner.rsplit(":", 1)[1])


def test_gunicorn_serves_and_the_worker_process_runs_the_cycles(tmp_path, db_url):
    env = h.shop_env(db_url, AIOPS_SCHEDULER=1, AIOPS_DETECTION_INTERVAL=1)
    with h.running(tmp_path, env, workers=2) as server:
        log = server.log_path.read_text(errors="replace")
        # The master migrated before forking any worker.
        assert "database schema upgraded" in log
        assert log.index("database schema upgraded") < log.index("Booting worker")
        worker = server.worker_processes[0]
        h.checkouts(server.url, 20, 4)
        h.wait_for(lambda: len(_rows(db_url, DetectionCycle)) >= 3, "three scheduled cycles")

        summary = h.analyze(server)
        assert summary["spans"] >= 0
        answered = [r for r in _rows(db_url, CycleRequest) if r.answered_at is not None]
        assert answered and _pid(answered[-1].answered_by) == worker.pid
        web_pids = {int(p) for p in BOOTED.findall(server.log_path.read_text(errors="replace"))}

        # Only the worker process schedules; every cycle so far is its.
        assert {int(p) for p in SCHEDULER_STARTED.findall(server.log_path.read_text())} == {worker.pid}
        assert {_pid(c.owner) for c in _rows(db_url, DetectionCycle)} == {worker.pid}

        # SIGTERM: the worker finishes its job, signs off and exits cleanly.
        assert worker.stop() == 0
        server.worker_processes.clear()
        assert _rows(db_url, WorkerHeartbeat) == []
        # With no worker alive, the web process runs the asked-for cycle itself.
        h.analyze(server)
        last = _rows(db_url, DetectionCycle, DetectionCycle.started_at)[-1]
        assert _pid(last.owner) in web_pids


def test_python_app_py_is_the_whole_demo_in_one_process(tmp_path, sqlite_url):
    port = free_port()
    env = environment.clean(PORT=port, AIOPS_DATABASE_URL=sqlite_url, AIOPS_DETECTION_INTERVAL=1,
                            AIOPS_FLUSH_INTERVAL=0.1)
    log_path = tmp_path / "demo.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        import requests

        h.wait_for(lambda: _answers(url), "the demo to answer /health", timeout=30)
        assert requests.post(url + "/simulate/clear", timeout=10).status_code == 200  # the demo is on
        h.checkouts(url, 10, 2)
        h.wait_for(lambda: len(_rows(sqlite_url, DetectionCycle)) >= 2, "two scheduled cycles")
        response = requests.post(url + "/aiops/analyze", timeout=60)
        assert response.status_code == 200, response.text
        owners = {c.owner for c in _rows(sqlite_url, DetectionCycle)}
        assert owners == {f"{socket.gethostname()}:{proc.pid}"}
        assert {r.answered_by for r in _rows(sqlite_url, CycleRequest)} == {
            f"{socket.gethostname()}:{proc.pid}"
        }
        assert sum(c.spans for c in _rows(sqlite_url, DetectionCycle)) >= 30  # checkout, payment, inventory
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "detection scheduler started in pid" in log_path.read_text(errors="replace")


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url + "/health", timeout=1).status_code == 200
    except requests.RequestException:
        time.sleep(0.1)
        return False
