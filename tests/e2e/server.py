"""A real gunicorn server on loopback for end-to-end tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support import environment

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _no_control_socket() -> list[str]:
    """Newer gunicorn opens a control socket at one fixed path per user; servers started side
    by side (two instances, parallel test runs) would fight over it, and tests never use it."""
    from gunicorn import config

    names = {setting.name for setting in config.KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


class GunicornServer:
    """``gunicorn -w N -k gthread 'app:create_app()'`` with the given AIOPS_* environment.

    Only ``env`` configures the server: the test process's own settings are not inherited.
    """

    def __init__(self, env: dict[str, str], workers: int = 4, threads: int = 8, log_path: Path | None = None,
                 extra_args: list[str] | None = None):
        self.env = environment.clean(**env)
        self.workers = workers
        self.threads = threads
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> GunicornServer:
        cmd = [
            sys.executable, "-m", "gunicorn", "-w", str(self.workers), "-k", "gthread",
            "--threads", str(self.threads), "-b", f"127.0.0.1:{self.port}",
            *_no_control_socket(), *self.extra_args, "app:create_app()",
        ]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        finally:
            if self.log_path:
                out.close()  # the child has its own copy
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not answer /health in time")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> GunicornServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(self.url + path, timeout=kw.pop("timeout", 30), **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, timeout=kw.pop("timeout", 30), **kw)


class WorkerProcess:
    """``flask --app app aiops worker``: the scheduled work beside a server (same environment)."""

    STARTED = b" started"

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = environment.clean(**env)
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        cmd = [sys.executable, "-m", "flask", "--app", "app", "aiops", "worker"]
        with open(self.log_path, "ab") as out:
            start = out.tell()
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        marker = f"worker {socket.gethostname()}:{self.proc.pid} started".encode()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.proc.returncode}; see {self.log_path}")
            with open(self.log_path, "rb") as log:
                log.seek(start)
                if marker in log.read():
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the worker did not start in time; see {self.log_path}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def close(self) -> None:
        self.stop()

    def stop(self) -> int | None:
        """SIGTERM and wait: the worker finishes its running job and exits 0."""
        code = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif self.proc:
            code = self.proc.returncode
        self.proc = None
        return code
