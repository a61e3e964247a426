"""Every child process of the lab, started in its own session and stopped together.

Each child gets its own session (so a Ctrl-C in the terminal reaches only the
lab, which then stops the children in order) and, on Linux, a parent-death
signal (so a lab killed with SIGKILL does not leave services running).
``stop_all`` signals each child's whole process group, which takes gunicorn's
workers along with their master.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PR_SET_PDEATHSIG = 1


class ChildDied(RuntimeError):
    """A child exited while the lab still needed it; the message ends with its log's last lines."""


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: Ctrl-C and atexit still stop the children
        pass


def clean_env(**extra: str) -> dict[str, str]:
    """The lab's environment without the caller's AIOPS_* and OTEL_* settings, plus ``extra``:
    a run must not depend on what the developer's shell happens to export."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOPS_", "OTEL_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Children:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: dict[str, tuple[subprocess.Popen, Path]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        """Start ``python args...`` in the project root, its output in ``<log_dir>/<name>.log``."""
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, preexec_fn=_die_with_parent)
        self.procs[name] = (proc, log)
        return proc

    def pids(self) -> list[int]:
        return [proc.pid for proc, _ in self.procs.values()]

    def check(self) -> None:
        """Raise ChildDied if any child has exited."""
        for name, (proc, log) in self.procs.items():
            if proc.poll() is not None:
                raise ChildDied(f"{name} exited with code {proc.returncode}; last lines of {log}:\n"
                                + tail(log))

    def stop_all(self, timeout: float = 15.0) -> None:
        """SIGTERM every child's process group, wait, then SIGKILL what is left."""
        for proc, _ in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc, _ in self.procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
        for proc, _ in self.procs.values():
            _signal_group(proc, signal.SIGKILL)  # stragglers, and workers a master left behind
            proc.wait()
        self.procs.clear()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session: the group id is the child's pid
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, lines: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 8192))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
