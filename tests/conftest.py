"""Shared fixtures: an app on a throwaway database (SQLite, and PostgreSQL when reachable).

Every test that takes ``db_url`` (directly or through ``app``) runs once per
backend. PostgreSQL variants are skipped when no server answers, unless
``AIOPS_REQUIRE_POSTGRES=1`` (as in CI), where that is a failure.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import databases  # noqa: E402

_PG: bool | None = None


def _postgres() -> bool:
    global _PG
    if _PG is None:
        _PG = databases.postgres_available()
    return _PG


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'aiops.db'}"
        return
    if not _postgres():
        if os.environ.get("AIOPS_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL is required (AIOPS_REQUIRE_POSTGRES=1) but not reachable")
        pytest.skip("PostgreSQL not reachable")
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
    from app import create_app

    base = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": db_url,
        "AIOPS_SCHEDULER": False,
        "AIOPS_ENABLE_SIMULATION": True,
        "AIOPS_FLUSH_INTERVAL": 0.05,
        "AIOPS_DEMO_TIMEOUT": 1.0,
    }
    base.update(config)
    app = create_app(base)
    from aiops.schema import ensure_schema

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
