"""Shared fixtures: an app on a throwaway database (SQLite, and PostgreSQL when reachable).

Every test that takes ``db_url`` (directly or through ``app``) runs once per
backend, on a database already at the newest schema (``empty_db_url``: one with
nothing in it). PostgreSQL variants are skipped when no server answers, unless
``AIOPS_TEST_REQUIRE_POSTGRES=1`` (as in CI), where that is a failure.

The caller's ``AIOPS_*`` settings (and ``PORT``, ``HOST``...) are removed from
the environment before anything else runs: see :mod:`tests.support.environment`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import databases, environment, routing_cache  # noqa: E402

environment.strip(os.environ)
routing_cache.install()

_PG: bool | None = None
# Databases the db_url fixture copied from the migrated template: make_app need not migrate them.
_MIGRATED: set[str] = set()


def _postgres() -> bool:
    global _PG
    if _PG is None:
        _PG = databases.postgres_available()
    return _PG


BACKENDS = ["sqlite", "postgresql"]
# For a test whose answer does not depend on the store (a bad parameter is a 400, say): its
# PostgreSQL variant would run the same Python, and no SQL but what hundreds of other PostgreSQL
# variants run too (the recorder's span insert, a read of a table the test left empty).
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
E2E = ROOT / "tests" / "e2e"


# An e2e test that fails runs once more (pytest-rerunfailures; the summary counts it as "rerun").
# They time real servers on a 2-core machine shared with PostgreSQL and the test's own clients, and a
# stall there can read as the slowdown a test looks for. A test that fails twice fails the run; a
# rerun in a green run is a flake to look into, not a pass to forget.
E2E_RERUNS = 1


def pytest_collection_modifyitems(items):
    """Everything under tests/e2e/ is ``e2e``, and nothing else is: the fast loop,
    ``pytest -m "not e2e"``, is exactly the tests outside tests/e2e/ (as the README says)."""
    stray = []
    for item in items:
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.flaky(reruns=E2E_RERUNS))
        elif item.get_closest_marker("e2e"):
            stray.append(item.nodeid)
    if stray:
        raise pytest.UsageError(f"marked e2e outside tests/e2e/ (move them there): {', '.join(stray)}")
    # The long e2e modules go first: under ``-n auto --dist loadscope --no-loadscope-reorder`` the thousands
    # of short tests then fill the workers at the end, not one worker finishing a 3-minute module alone.
    items.sort(key=lambda item: E2E not in item.path.parents)


def _require_postgres() -> None:
    if not _postgres():
        if environment.flag("REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is required (AIOPS_TEST_REQUIRE_POSTGRES=1) but not reachable")
        pytest.skip("PostgreSQL not reachable")


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory):
    """``migrated_template(backend)``: a database migrated once per session, for tests to copy.

    SQLite: the path of the file. PostgreSQL: :class:`tests.support.databases.PostgresCopies`
    of the template database. Made on first use; dropped when the session ends.
    """
    made: dict[str, object] = {}
    template_url: list[str] = []

    def get(backend: str):
        if backend not in made:
            if backend == "sqlite":
                path = tmp_path_factory.mktemp("template") / "aiops.db"
                databases.migrate(f"sqlite:///{path}")
                made[backend] = path
            else:
                template_url.append(databases.migrate(databases.create_postgres_database()))
                made[backend] = databases.PostgresCopies(template_url[0])
        return made[backend]

    yield get
    if "postgresql" in made:
        made["postgresql"].close()
        databases.drop_postgres_database(template_url[0])


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path, migrated_template):
    """A throwaway database at the newest schema (as ``flask aiops migrate`` leaves it), per backend."""
    if request.param == "sqlite":
        url = databases.copy_sqlite(migrated_template("sqlite"), tmp_path / "aiops.db")
        _MIGRATED.add(url)
        yield url
        _MIGRATED.discard(url)
        return
    _require_postgres()
    copies = migrated_template("postgresql")
    url = copies.take()
    _MIGRATED.add(url)
    try:
        yield url
    finally:
        _MIGRATED.discard(url)
        copies.release(url)


@pytest.fixture(params=BACKENDS)
def empty_db_url(request, tmp_path):
    """A throwaway database with nothing in it (for tests of the migrations themselves), per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'aiops.db'}"
        return
    _require_postgres()
    url = databases.create_postgres_database()
    try:
        yield url
    finally:
        databases.drop_postgres_database(url)


@pytest.fixture
def sqlite_url(tmp_path):
    """For tests about SQLite specifically (or too slow to repeat per backend)."""
    return f"sqlite:///{tmp_path / 'aiops.db'}"


def make_app(db_url: str, **config):
    """An app for tests on ``db_url`` (migrated here unless it is a copy of the migrated template)."""
    from app import create_app

    base = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": db_url,
        "AIOPS_SCHEDULER": False,
        "AIOPS_ENABLE_SIMULATION": True,
        "AIOPS_FLUSH_INTERVAL": 0.05,
        "AIOPS_DEMO_TIMEOUT": 1.0,
        "AIOPS_DEMO_WORK": 0.1,
    }
    base.update(config)
    app = create_app(base)
    if db_url not in _MIGRATED:
        from aiops.store.schema import ensure_schema

        with app.app_context():
            ensure_schema()
    return app


def dispose_app(app) -> None:
    """Write what the app's span buffer still holds, then close its connections.

    Flushing first means the buffer's writer thread (it outlives the test) has
    nothing left to write into a database the fixture is about to drop.
    """
    from telemetry.db import db

    with app.app_context():
        app.extensions["aiops_buffer"].flush()
        if "aiops_log_buffer" in app.extensions:
            app.extensions["aiops_log_buffer"][0].flush()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(db_url):
    app = make_app(db_url)
    yield app
    dispose_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def app_factory(db_url):
    """Apps on the same throwaway database with different settings (all disposed after)."""
    made = []

    def factory(**config):
        made.append(make_app(db_url, **config))
        return made[-1]

    yield factory
    for app in made:
        dispose_app(app)
