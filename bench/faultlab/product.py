"""The product under test: started here under gunicorn on a fresh SQLite database, or given by URL.

Started in the production layout, as the e2e tests start it: gunicorn
(``gunicorn -k gthread 'app:create_app()'``) and one ``flask aiops worker``
running the scheduler (detection is the product's own, every
``AIOPS_DETECTION_INTERVAL``), the demo and notifications off. Only the
incident list is read back; the lab never triggers a cycle itself, so
detection times are what a user would see.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import requests

from bench.faultlab.processes import Children, clean_env

MAX_BODY = 32 * 1024 * 1024


def product_settings(db_path: Path, interval: float, extra: dict[str, str]) -> dict[str, str]:
    settings = {
        "AIOPS_DATABASE_URL": f"sqlite:///{db_path}",
        "AIOPS_DETECTION_INTERVAL": str(interval),
        "AIOPS_ENABLE_SIMULATION": "0",
        "AIOPS_NOTIFICATIONS": "0",
        "AIOPS_SCHEDULER": "1",
        "AIOPS_API_TOKEN": "",
    }
    settings.update(extra)
    return settings


def start(children: Children, run_dir: Path, interval: float, extra: dict[str, str],
          workers: int = 2, threads: int = 8, timeout: float = 60.0) -> str:
    """Start gunicorn on a free loopback port; return its URL once ``/health`` answers."""
    from tests.e2e.server import _no_control_socket  # the flag only newer gunicorn knows

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = clean_env(**product_settings(run_dir / "aiops.db", interval, extra))
    children.start("product", ["-m", "gunicorn", "-w", str(workers), "-k", "gthread", "--threads",
                               str(threads), "-b", f"127.0.0.1:{port}", *_no_control_socket(),
                               "app:create_app()"], env)
    url = f"http://127.0.0.1:{port}"
    started = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children.check()
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                if not started:  # gunicorn's master has migrated the database: the worker may start
                    children.start("worker", ["-m", "flask", "--app", "app", "aiops", "worker"], env)
                    started = True
                return url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the product did not answer {url}/health within {timeout:.0f} s")


def incidents(url: str) -> list[dict]:
    """Active and resolved incidents (the API's shapes), read with a bounded body."""
    response = requests.get(url + "/aiops/incidents", timeout=30, stream=True)
    response.raise_for_status()
    body = response.raw.read(MAX_BODY + 1, decode_content=True)
    if len(body) > MAX_BODY:
        raise ValueError("incident list larger than the lab reads")
    data = json.loads(body)
    return list(data.get("active_incidents", [])) + list(data.get("resolved_incidents", []))
