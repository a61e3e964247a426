"""Pieces the benchmarks share: the project on ``sys.path``, a gunicorn on loopback, a table.

Not a benchmark itself. Each ``bench/*.py`` script runs on its own from a fresh
clone (``.venv/bin/python bench/NAME.py``) and imports this module by path.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.server import GunicornServer  # noqa: E402  (needs ROOT on sys.path)

__all__ = ["ROOT", "GunicornServer", "cpu_count", "database", "median", "print_table", "process_tree_cpu",
           "verdict"]


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def process_tree_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by ``pid`` and its children (Linux ``/proc``; else None).

    For a gunicorn master that is the whole server: CPU per unit of work does not
    depend on what else the machine runs, throughput does.
    """
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, todo = 0.0, [pid]
    try:
        while todo:
            p = todo.pop()
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
    except (OSError, ValueError, IndexError):
        return None if p == pid else total
    return total


def median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        padded = (c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        print("  ".join(padded))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def _admin(url: sa.URL, sql: str) -> None:
    engine = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


@contextmanager
def database(name: str, base_url: str | None, tmp: Path) -> Iterator[str]:
    """A fresh database for one run (a scenario, a bench store): a SQLite file in ``tmp``, or
    ``<base>_<name>_<pid>`` on the PostgreSQL server of ``base_url`` (dropped after)."""
    if not base_url:
        yield f"sqlite:///{tmp / (name + '.db')}"
        return
    url = sa.engine.make_url(base_url)
    fresh = re.sub(r"\W", "_", f"{url.database or 'aiops_bench'}_{name}_{os.getpid()}").lower()
    _admin(url, f'CREATE DATABASE "{fresh}"')
    try:
        yield url.set(database=fresh).render_as_string(hide_password=False)
    finally:
        _admin(url, f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')


def bulk_load(path: str | Path, tables: tuple[str, ...], fill, analyze: bool = True) -> None:
    """Load a SQLite store fast: the tables' indexes dropped, ``fill(conn)`` run in one transaction,
    the indexes built again once, then ANALYZE (unless told not to) and a WAL checkpoint (as a
    bench's history needs, not as the product writes)."""
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA cache_size=-500000")
    marks = ", ".join("?" * len(tables))
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                           f"AND tbl_name IN ({marks})", tables).fetchall()
    conn.execute("BEGIN IMMEDIATE")
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    fill(conn)
    for _, create in indexes:
        conn.execute(create)
    conn.execute("COMMIT")
    if analyze:
        conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def span_insert_sql(fields: tuple[str, ...] | None = None) -> str:
    """An INSERT of span rows: the named columns without ``attributes`` (the synthetic rows of the
    benches carry none), or ``fields``."""
    from telemetry.columns import SPAN_COLUMNS

    fields = fields or SPAN_COLUMNS
    return f"INSERT INTO spans ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})"
