"""Where the processes of one installation keep their Prometheus values (multiprocess mode).

``prometheus_client``'s multiprocess mode has every process write its values
to memory-mapped files in one directory; a scrape (whichever process answers
it) adds up every file there. For ``GET /metrics`` on the web server to show
the worker's detection cycles, anomalies, incidents and outbox sends, the
gunicorn workers and ``flask aiops worker`` must write to the *same*
directory. They agree on it with no setting:

- ``PROMETHEUS_MULTIPROC_DIR`` when the operator sets it (the shipped
  ``gunicorn.conf.py`` removes a previous run's files at start, keeping those of
  live processes: the worker's);
- otherwise every process derives it from what it shares with the others:
  the app's instance folder and database URL (:func:`store_key`), under a
  per-user private folder of the temporary directory,
  ``<tmp>/aiops-metrics-<uid>/<key>``. The gunicorn master, every gunicorn worker,
  the worker process and ``python app.py`` on one machine and one database
  compute the same path; two installations (or two test databases) never do.

Files of dead processes: counters of a process that exited stay in the totals
(so they never go backwards when gunicorn replaces a worker) until a server or
worker *starts* (it removes the files of processes that are no longer running,
as the library asks the directory to be wiped between runs), and the last
process to leave removes the directory. Live gauges of an exiting process are
dropped at once (``mark_process_dead``: gunicorn's ``child_exit``, and
:func:`leave` for the others).

Safety: the per-user folder is created ``0700`` and used only if it is a real
directory owned by this user and writable by no one else (the temporary
directory is shared: another user could have planted a symlink or a directory
there). Otherwise the process falls back to a private directory of its own,
and logs why; its figures are then its own only.

A directory this module chose is exported in the environment with
``AIOPS_METRICS_DIR_OWNER`` (the pid of the process tree it belongs to), so a
server started *from* such a process (the test suite starting gunicorn) does
not inherit it.
"""

from __future__ import annotations

import atexit
import glob
import hashlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import MutableMapping

log = logging.getLogger(__name__)

DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
OWNER_ENV = "AIOPS_METRICS_DIR_OWNER"


def store_key(instance_path: str, database_url: str) -> str:
    """What every process of one installation shares, as a short name (the URL never shows)."""
    digest = hashlib.sha256(f"{os.path.abspath(instance_path)}\0{database_url}".encode()).hexdigest()
    return f"db-{digest[:20]}"


def owned_dir(environ: MutableMapping[str, str], tree_pid: int) -> str | None:
    """The directory in ``environ`` if it applies to the process tree of ``tree_pid``.

    Set by an operator (no owner): it applies. Chosen by aiops for another
    process tree (inherited by a server that process started): it does not.
    """
    path = environ.get(DIR_ENV)
    if not path:
        return None
    owner = environ.get(OWNER_ENV)
    return path if owner is None or owner == str(tree_pid) else None


def _export(environ: MutableMapping[str, str], path: str, tree_pid: int) -> str:
    environ[DIR_ENV] = path
    environ[OWNER_ENV] = str(tree_pid)
    return path


def _private_folder(path: str) -> str:
    """``path`` as a directory only this user can write to; OSError if it is anything else."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)  # lstat: a symlink planted here is refused, not followed
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise OSError(f"{path} is not a private directory of uid {os.getuid()}")
    return path


def shared_dir(key: str, base: str | None = None) -> str:
    """``<base>/aiops-metrics-<uid>/<key>`` (``base``: the temporary directory), created safely."""
    folder = _private_folder(os.path.join(base or tempfile.gettempdir(), f"aiops-metrics-{os.getuid()}"))
    return _private_folder(os.path.join(folder, key))


def _file_pid(path: str) -> int | None:
    """``counter_1234.db`` -> 1234 (prometheus_client names each process's files so)."""
    stem = os.path.basename(path).rsplit(".", 1)[0]
    tail = stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def process_alive(pid: int) -> bool:
    """A process with this id runs (one of another user's counts: signalling it is refused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(pid: int | None) -> bool:
    """Another running process (this one does not count: it is starting, or leaving)."""
    return pid is not None and pid != os.getpid() and process_alive(pid)


def remove_stale(path: str) -> list[str]:
    """Remove the value files of processes that are no longer running; the files removed."""
    removed = []
    for stale in glob.glob(os.path.join(path, "*.db")):
        if not _alive(_file_pid(stale)):
            try:
                os.remove(stale)
                removed.append(stale)
            except FileNotFoundError:  # another process starting at the same time removed it
                pass
    return removed


def leave(path: str) -> None:
    """At exit: drop this process's live gauges; the last process out removes the directory."""
    from prometheus_client import multiprocess

    try:
        if any(_alive(_file_pid(f)) for f in glob.glob(os.path.join(path, "*.db"))):
            multiprocess.mark_process_dead(os.getpid(), path)
            return
        remove_stale(path)
        os.rmdir(path)  # fails (and keeps it) if a process joined since: it has written a file
    except OSError:
        pass


def prepare_master(environ: MutableMapping[str, str], pid: int, key: str | None = None) -> str:
    """In the gunicorn master before the fork: the directory its workers will use, without the
    files of processes that are gone (a previous run's). ``key``: :func:`store_key` of the app."""
    path = owned_dir(environ, pid)
    if path is not None:
        os.makedirs(path, exist_ok=True)
    elif key is not None:
        path = _shared_or_private(key, pid)
    else:
        path = tempfile.mkdtemp(prefix=f"aiops-metrics-gunicorn-{pid}-")
    remove_stale(path)
    return _export(environ, path, pid) if environ.get(DIR_ENV) != path else path


def cleanup_master(environ: MutableMapping[str, str], pid: int) -> None:
    """On the master's exit: if the directory is one aiops chose, the last process out removes it."""
    if environ.get(OWNER_ENV) == str(pid) and environ.get(DIR_ENV):
        leave(environ[DIR_ENV])


def _start_ticks(pid: int) -> str:
    """A process's start time (clock ticks since boot, Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"


def _shared_or_private(key: str, tree: int) -> str:
    try:
        return shared_dir(key)
    except OSError as exc:
        path = tempfile.mkdtemp(prefix=f"aiops-metrics-{tree}-")
        log.warning("metrics: %s; using %s, so /metrics shows this process tree's figures only", exc, path)
        return path


def choose_dir(environ: MutableMapping[str, str], key: str | None = None) -> str:
    """This process's metrics directory, exported in ``environ`` (``prometheus_client`` reads it
    there). ``key``: :func:`store_key` of the app, shared by every process of the installation."""
    master = os.getppid() if environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/") else None
    tree = master if master is not None else os.getpid()
    path = owned_dir(environ, tree)
    if path is not None:
        os.makedirs(path, exist_ok=True)
        if environ.get(OWNER_ENV) is not None:  # chosen by aiops (here, or in the gunicorn master)
            atexit.register(leave, path)
        return path
    if key is not None:
        path = _shared_or_private(key, tree)
        if master is None:  # a starting worker or demo; gunicorn's workers leave it to their master
            remove_stale(path)
        atexit.register(leave, path)
    elif master is not None:
        # gunicorn without our gunicorn.conf.py, and no app to derive a name from: the workers
        # agree on one named after their master.
        folder = _private_folder(os.path.join(tempfile.gettempdir(), f"aiops-metrics-{os.getuid()}"))
        path = os.path.join(folder, f"gunicorn-{master}-{_start_ticks(master)}")
        os.makedirs(path, mode=0o700, exist_ok=True)
    else:
        path = tempfile.mkdtemp(prefix=f"aiops-metrics-{tree}-")
        atexit.register(shutil.rmtree, path, True)
    return _export(environ, path, tree)
