"""Schema migrations: fresh databases, model/migration parity, adopting old databases, racing starts.

Every test runs on SQLite and on a fresh, empty PostgreSQL database (``empty_db_url``).
"""

from __future__ import annotations

import multiprocessing

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import aiops.store.models  # noqa: F401 - register every table on db.metadata
import simulation.models  # noqa: F401
import telemetry.models  # noqa: F401
from aiops.store import schema
from telemetry.db import configure_engine, db

MODEL_TABLES = {"spans", "baselines", "signal_baselines", "detection_state", "detection_cycles",
                "incidents", "anomalies", "faults", "notifications", "notification_channels",
                "cycle_requests", "workers", "logs", "log_templates", "log_miners", "metric_points",
                "log_memory", "slos", "silences", "rules", "rule_alerts"}


@pytest.fixture
def engine(empty_db_url):
    engine = sa.create_engine(empty_db_url)
    configure_engine(engine)
    yield engine
    engine.dispose()


def _differences(engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def _revision(engine) -> set[str]:
    with engine.connect() as conn:
        return schema.current(conn)


def test_models_cover_the_expected_tables():
    assert set(db.metadata.tables) == MODEL_TABLES


def test_fresh_database_gets_the_schema_from_migrations(engine):
    assert schema.upgrade(engine) == "upgraded"
    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names()) == MODEL_TABLES | {"alembic_version"}
    assert _revision(engine) == schema.heads()
    indexes = {ix["name"] for ix in inspector.get_indexes("spans")}
    assert indexes == {"ux_spans_trace_span", "ix_spans_start_time", "ix_spans_endpoint_time"}
    # Idempotent: the second run finds nothing to do.
    assert schema.upgrade(engine) == "current"


def test_migrated_schema_matches_the_models(engine):
    """What autogenerate would write for the models against a migrated database: nothing."""
    schema.upgrade(engine)
    assert _differences(engine) == []


def test_database_made_by_create_all_is_adopted(engine):
    """A pre-migration database (create_all, older models) keeps its data and gets stamped."""
    old = sa.MetaData()
    for name, table in db.metadata.tables.items():
        if name != "signal_baselines":  # signal baselines came later
            table.to_metadata(old)
    old.tables["detection_state"].c.cursor.type = sa.Integer()  # the cursor used to be an INTEGER
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(telemetry.models.Span).values(
            trace_id="a" * 32, span_id="b" * 16, service="shop", endpoint="payment", kind=2,
            error=False, start_time=1.0, duration_ms=2.0))
        conn.execute(sa.insert(aiops.store.models.DetectionState).values(id=1, cursor=1, cycles=3))
    assert _revision(engine) == set()

    assert schema.upgrade(engine) == "adopted"
    assert _revision(engine) == schema.heads()
    assert _differences(engine) == []
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(telemetry.models.Span)) == 1
        assert conn.scalar(sa.select(aiops.store.models.DetectionState.cycles)) == 3
    assert schema.upgrade(engine) == "current"


def _start(url: str, barrier, results) -> None:
    engine = sa.create_engine(url)
    try:
        barrier.wait(timeout=30)
        results.put(schema.upgrade(engine))
    except BaseException as exc:  # noqa: BLE001 - report any failure to the parent
        results.put(f"failed: {exc!r}")
    finally:
        engine.dispose()


def test_concurrent_first_starts_migrate_once(empty_db_url):
    """Four processes start on an empty database at the same moment: one migrates, none fails."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_start, args=(empty_db_url, barrier, results)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    outcomes = sorted(results.get(timeout=5) for _ in procs)
    assert [p.exitcode for p in procs] == [0] * 4
    assert outcomes == ["current", "current", "current", "upgraded"], outcomes

    engine = sa.create_engine(empty_db_url)
    try:
        assert _revision(engine) == schema.heads()
        assert _differences(engine) == []
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        engine.dispose()


def test_upgrade_removes_duplicate_spans_keeping_the_first(engine):
    """Before 0003 a repeated span was stored twice; the upgrade keeps its first copy."""
    from alembic import command

    from telemetry.db import write_connection

    with write_connection(engine) as conn:
        command.upgrade(schema.alembic_config(conn), "0002")
    columns = "trace_id, span_id, service, endpoint, kind, start_time, duration_ms, error"
    rows = [("t1", "s1", "first"), ("t1", "s1", "repeat"), ("t1", "s2", "other"), ("t2", "s1", "other trace")]
    with engine.begin() as conn:
        for trace, span, endpoint in rows:
            conn.execute(sa.text(f"INSERT INTO spans ({columns}) VALUES (:t, :s, 'svc', :e, 2, 0, 1, false)"),
                         {"t": trace, "s": span, "e": endpoint})
    assert schema.upgrade(engine) == "upgraded"
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT trace_id, span_id, endpoint FROM spans ORDER BY id")).all()
    assert [tuple(r) for r in kept] == [
        ("t1", "s1", "first"), ("t1", "s2", "other"), ("t2", "s1", "other trace")]
    assert _differences(engine) == []
