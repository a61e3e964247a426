"""Shared pieces of the end-to-end scenarios: a demo server's environment, traffic, assertions.

Every scenario runs a real gunicorn (2 gthread workers unless it asks for more) on loopback against a
real database, drives ``POST /checkout`` from several client threads (checkout
calls payment and inventory over real HTTP), injects faults through
``/simulate/*`` and triggers detection with ``POST /aiops/analyze``.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.e2e.server import GunicornServer, WorkerProcess

DEMO_ENDPOINTS = ("checkout", "payment", "inventory")

# Make the app's own INFO logs (scheduler start, cycle summaries) reach the
# server log next to gunicorn's; access lines stay off to keep the log short.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["error_console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
    },
}


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'aiops.db'}"


def shop_env(db_url: str, **overrides) -> dict[str, str]:
    """The environment of a demo server: simulation on, scheduler off (tests trigger cycles)."""
    env = {
        "AIOPS_DATABASE_URL": db_url,
        "AIOPS_ENABLE_SIMULATION": "1",
        "AIOPS_SCHEDULER": "0",
        "AIOPS_RECORDER": "lean",
        "AIOPS_FLUSH_INTERVAL": "0.1",
        "AIOPS_MIN_BASELINE_SAMPLES": "20",
        "AIOPS_API_TOKEN": "",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


# Threads per worker. /checkout calls /payment and /inventory on the same server,
# and a gthread worker accepts connections even when all its threads are busy:
# when concurrent checkouts pile onto one worker, the calls they wait on queue
# behind them until checkout's timeout (a 504 no fault explains). With at most
# MAX_CLIENTS concurrent checkouts, each checkout and the call it waits on get
# a thread even if every one of them lands on the same worker.
THREADS = 16
MAX_CLIENTS = THREADS // 2


@contextmanager
def running(tmp_path: Path, env: dict[str, str], name: str = "server", workers: int = 2,
            worker_processes: int = 1):
    """The production layout: a started GunicornServer (web workers only serve) and
    ``worker_processes`` ``flask aiops worker`` processes beside it, all logging to
    ``tmp_path/<name>.log``; stopped on exit. The processes are ``server.worker_processes``."""
    log_config = tmp_path / "gunicorn-logging.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    log_path = tmp_path / f"{name}.log"
    server = GunicornServer(env, workers=workers, threads=THREADS, log_path=log_path,
                            extra_args=["--log-config-json", str(log_config)])
    server.worker_processes = [WorkerProcess(env, log_path) for _ in range(worker_processes)]
    try:
        # All start at once, as systemd starts the units: whichever migrates first takes the schema
        # lock and the others find the work done (aiops/store/schema.py).
        with ThreadPoolExecutor(max_workers=1 + worker_processes) as pool:
            starting = [pool.submit(server.start)] + [pool.submit(p.start) for p in server.worker_processes]
            for future in starting:
                future.result()
        yield server
    finally:
        for process in server.worker_processes:
            process.stop()
        server.stop()


def send(count: int, threads: int, request: Callable[[requests.Session], requests.Response]
         ) -> collections.Counter:
    """Make exactly ``count`` calls of ``request`` from ``threads`` concurrent clients.

    Returns a tally of status codes (or exception names) so a test can see
    what the traffic experienced.
    """
    tally: collections.Counter = collections.Counter()
    lock = threading.Lock()
    remaining = [count]

    def client() -> None:
        # Closed when done: a kept-alive connection holds a stopping gunicorn worker for 2 s.
        with requests.Session() as session:
            while True:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                try:
                    code: int | str = request(session).status_code
                except requests.RequestException as exc:
                    code = type(exc).__name__
                with lock:
                    tally[code] += 1

    pool = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return tally


def checkouts(url: str, count: int, threads: int, timeout: float = 30.0) -> collections.Counter:
    """Send exactly ``count`` ``POST /checkout`` from ``threads`` concurrent clients (kept-alive)."""
    assert threads <= MAX_CLIENTS, f"more than {MAX_CLIENTS} concurrent checkouts can starve a worker"
    return send(count, threads,
                lambda session: session.post(url + "/checkout", json={"amount": 10}, timeout=timeout))


def analyze(server: GunicornServer) -> dict:
    response = server.post("/aiops/analyze", timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def incidents(server: GunicornServer) -> dict:
    response = server.get("/aiops/incidents")
    assert response.status_code == 200, response.text
    return response.json()


def metrics(server: GunicornServer) -> dict:
    response = server.get("/aiops/metrics")
    assert response.status_code == 200, response.text
    return response.json()["metrics"]


def inject(server: GunicornServer, kind: str, **params) -> dict:
    response = server.post(f"/simulate/{kind}", params=params)
    assert response.status_code == 200, response.text
    return response.json()["injected"]


def warm_up(server: GunicornServer, rounds: int = 2, per_round: int = 30, threads: int = 6) -> dict:
    """Normal traffic and a cycle per round, until every demo endpoint has a ready baseline."""
    for _ in range(rounds):
        tally = checkouts(server.url, per_round, threads)
        assert tally == {200: per_round}, f"warm-up traffic failed: {dict(tally)}"
        summary = analyze(server)
        assert summary["anomalies"] == [], f"false alarm during warm-up: {summary}"
    current = metrics(server)
    for name in DEMO_ENDPOINTS:
        assert current[name]["baseline_latency_ms"] is not None, f"no baseline for {name}: {current}"
    assert incidents(server)["active_incidents"] == []
    return current


def only_incident(server: GunicornServer) -> dict:
    """The single active incident (asserting there is exactly one, and none resolved)."""
    data = incidents(server)
    active = data["active_incidents"]
    assert len(active) == 1, f"expected exactly one active incident, got {describe(server)}"
    assert data["resolved_incidents"] == [], data["resolved_incidents"]
    return active[0]


def assert_root(incident: dict, endpoint: str, service: str = "shop") -> None:
    root = incident["root_cause"]
    assert (root["service"], root["endpoint"]) == (service, endpoint), incident
    best = incident["root_cause_candidates"][0]
    assert (best["service"], best["endpoint"]) == (service, endpoint), incident["root_cause_candidates"]
    assert incident["status"] == "open"
    assert incident["affected_endpoints"][0] == endpoint, incident["affected_endpoints"]
    assert incident["trace_correlation"]["trace_id"], incident


def wait_for(condition, what: str, timeout: float = 20.0, every: float = 0.2) -> None:
    """Poll ``condition`` until true: for events no API call can trigger (a hung request ending)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def health_burst(server: GunicornServer, size: int = 16, path: str = "/health") -> None:
    """``size`` concurrent ``GET path`` (``/health``), each on a fresh connection.

    Keep-alive clients stick to the worker that accepted their connection, so
    steady traffic can leave a worker idle; new connections spread over them.
    """
    def hit() -> None:
        try:
            requests.get(server.url + path, headers={"Connection": "close"}, timeout=10)
        except requests.RequestException:
            pass

    burst = [threading.Thread(target=hit) for _ in range(size)]
    for t in burst:
        t.start()
    for t in burst:
        t.join()


def reach_every_worker(server: GunicornServer, served, workers: int, rounds: int = 50,
                       path: str = "/health") -> None:
    """Send bursts of ``GET path`` on fresh connections until ``served()`` names ``workers`` pids."""
    for _ in range(rounds):
        if len(served()) >= workers:
            return
        health_burst(server, path=path)
    assert len(served()) >= workers, f"only workers {sorted(served())} were reached"


def describe(server: GunicornServer) -> list:
    """Incidents in brief, for assertion messages."""
    data = incidents(server)
    return [
        (i["id"], i["status"], i["root_cause"]["endpoint"], i["title"], i["affected_endpoints"])
        for i in data["active_incidents"] + data["resolved_incidents"]
    ]
