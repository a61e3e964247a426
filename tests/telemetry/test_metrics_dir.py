"""Choosing the multiprocess directory every process of one installation shares (real processes
and files; the servers themselves: tests/e2e/test_selfmetrics.py and test_prometheus.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from telemetry import metrics_dir


@pytest.fixture
def dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


@pytest.fixture
def live_pid():
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield live.pid
    live.kill()
    live.wait()


def test_every_process_of_an_installation_derives_the_same_name():
    key = metrics_dir.store_key("/opt/aiops/instance", "postgresql+psycopg://aiops:secret@db/aiops")
    assert key == metrics_dir.store_key("/opt/aiops/instance", "postgresql+psycopg://aiops:secret@db/aiops")
    assert key != metrics_dir.store_key("/opt/aiops/instance", "postgresql+psycopg://aiops:secret@db/other")
    assert key != metrics_dir.store_key("/srv/aiops/instance", "postgresql+psycopg://aiops:secret@db/aiops")
    assert "secret" not in key and "/" not in key


def test_the_shared_directory_is_private_to_the_user(tmp_path):
    path = metrics_dir.shared_dir("db-abc", base=str(tmp_path))
    assert path == str(tmp_path / f"aiops-metrics-{os.getuid()}" / "db-abc")
    for folder in (path, os.path.dirname(path)):
        assert os.stat(folder).st_mode & 0o777 == 0o700
    assert metrics_dir.shared_dir("db-abc", base=str(tmp_path)) == path  # and found again


def test_a_planted_symlink_or_open_folder_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / f"aiops-metrics-{os.getuid()}").symlink_to(elsewhere)
    with pytest.raises(OSError, match="not a private directory"):
        metrics_dir.shared_dir("db-abc", base=str(tmp_path))
    other = tmp_path / "other"
    other.mkdir()
    (other / f"aiops-metrics-{os.getuid()}").mkdir(mode=0o777)
    os.chmod(other / f"aiops-metrics-{os.getuid()}", 0o777)  # writable by anyone: refused
    with pytest.raises(OSError, match="not a private directory"):
        metrics_dir.shared_dir("db-abc", base=str(other))
    assert list(elsewhere.iterdir()) == []


def test_an_operator_directory_applies_to_any_process_tree():
    assert metrics_dir.owned_dir({"PROMETHEUS_MULTIPROC_DIR": "/m"}, 42) == "/m"
    assert metrics_dir.owned_dir({}, 42) is None


def test_a_directory_chosen_for_another_process_tree_is_not_inherited():
    env = {"PROMETHEUS_MULTIPROC_DIR": "/m", "AIOPS_METRICS_DIR_OWNER": "7"}
    assert metrics_dir.owned_dir(env, 7) == "/m"
    assert metrics_dir.owned_dir(env, 42) is None  # e.g. a server the test process started


def test_the_gunicorn_master_uses_the_derived_directory_without_dead_files(dead_pid, live_pid,
                                                                              monkeypatch, tmp_path):
    monkeypatch.setattr(metrics_dir.tempfile, "gettempdir", lambda: str(tmp_path))
    key = metrics_dir.store_key(str(tmp_path), "sqlite:///x.db")
    path = metrics_dir.shared_dir(key)
    for pid in (dead_pid, live_pid):
        open(os.path.join(path, f"counter_{pid}.db"), "wb").close()
    env = {"PROMETHEUS_MULTIPROC_DIR": "/elsewhere", "AIOPS_METRICS_DIR_OWNER": "1"}  # inherited
    assert metrics_dir.prepare_master(env, 4242, key) == path
    assert env == {"PROMETHEUS_MULTIPROC_DIR": path, "AIOPS_METRICS_DIR_OWNER": "4242"}
    assert os.listdir(path) == [f"counter_{live_pid}.db"]  # the worker's stay
    metrics_dir.cleanup_master(env, 4242)
    assert os.path.isdir(path)  # the worker still counts there
    os.remove(os.path.join(path, f"counter_{live_pid}.db"))
    metrics_dir.cleanup_master(env, 4242)
    assert not os.path.exists(path)  # the last one out removes it


def test_the_gunicorn_master_empties_an_operator_directory_and_keeps_it(tmp_path, dead_pid):
    """A previous run's files go; those of a live process sharing the directory (the worker) stay."""
    (tmp_path / f"counter_{dead_pid}.db").write_bytes(b"old")
    (tmp_path / f"counter_{os.getppid()}.db").write_bytes(b"live")
    (tmp_path / "notes.txt").write_text("not ours")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    assert metrics_dir.prepare_master(env, 4242, "db-abc") == str(tmp_path)
    assert env == {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    assert sorted(os.listdir(tmp_path)) == sorted([f"counter_{os.getppid()}.db", "notes.txt"])
    metrics_dir.cleanup_master(env, 4242)  # not ours to remove
    assert tmp_path.is_dir()


def test_a_worker_process_joins_the_derived_directory_and_removes_dead_files(dead_pid, monkeypatch, tmp_path):
    monkeypatch.setattr(metrics_dir.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(metrics_dir.atexit, "register", lambda *a: None)
    path = metrics_dir.shared_dir("db-abc")
    open(os.path.join(path, f"histogram_{dead_pid}.db"), "wb").close()
    env = {"PROMETHEUS_MULTIPROC_DIR": "/from-my-parent", "AIOPS_METRICS_DIR_OWNER": "1"}
    assert metrics_dir.choose_dir(env, "db-abc") == path
    assert env["AIOPS_METRICS_DIR_OWNER"] == str(os.getpid())
    assert os.listdir(path) == []
    assert metrics_dir.choose_dir(env, "db-abc") == path  # and keeps it


def test_a_gunicorn_worker_keeps_a_dead_siblings_counters(dead_pid, monkeypatch, tmp_path):
    """Counters never go backwards when gunicorn replaces a worker: the newcomer removes nothing."""
    monkeypatch.setattr(metrics_dir.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(metrics_dir.atexit, "register", lambda *a: None)
    path = metrics_dir.shared_dir("db-abc")
    open(os.path.join(path, f"counter_{dead_pid}.db"), "wb").close()
    env = {"SERVER_SOFTWARE": "gunicorn/23.0.0"}
    assert metrics_dir.choose_dir(env, "db-abc") == path
    assert os.listdir(path) == [f"counter_{dead_pid}.db"]


def test_an_unsafe_folder_falls_back_to_a_private_directory(monkeypatch, tmp_path):
    monkeypatch.setattr(metrics_dir.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(metrics_dir.atexit, "register", lambda *a: None)
    (tmp_path / f"aiops-metrics-{os.getuid()}").symlink_to(tmp_path)
    path = metrics_dir.choose_dir({}, "db-abc")
    assert os.path.isdir(path) and os.path.basename(path).startswith(f"aiops-metrics-{os.getpid()}-")
    os.rmdir(path)


def test_without_an_app_a_single_process_gets_a_private_directory():
    env = {"PROMETHEUS_MULTIPROC_DIR": "/from-my-parent", "AIOPS_METRICS_DIR_OWNER": "1"}
    path = metrics_dir.choose_dir(env)
    assert path != "/from-my-parent" and os.path.isdir(path)
    assert env["AIOPS_METRICS_DIR_OWNER"] == str(os.getpid())


def test_the_last_process_to_leave_removes_the_directory(tmp_path, live_pid):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / f"counter_{os.getpid()}.db").write_bytes(b"mine")
    (shared / f"gauge_livesum_{os.getpid()}.db").write_bytes(b"mine")
    (shared / f"counter_{live_pid}.db").write_bytes(b"the worker's")
    metrics_dir.leave(str(shared))
    # Someone else still counts here: only this process's live gauges go, its counters stay.
    assert sorted(os.listdir(shared)) == sorted([f"counter_{os.getpid()}.db", f"counter_{live_pid}.db"])
    os.remove(shared / f"counter_{live_pid}.db")
    metrics_dir.leave(str(shared))
    assert not shared.exists()
