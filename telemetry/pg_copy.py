"""PostgreSQL's write path for span, log and metric rows: ``COPY ... FROM STDIN`` in binary.

COPY streams the rows in one command with no per-row statement, bind or result,
and binary format spares both sides formatting and parsing numbers and times as
text: a 512-row batch of spans stores about twice as fast as psycopg's pipelined
``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING`` (docs/performance.md).

COPY knows no ``ON CONFLICT``, and spans must skip the ones already stored: see
:func:`copy_new_rows`. Values go to the server as the driver's binary dumpers
write them, so a NUL in a text value is refused (a ``DataError``) and a lone
surrogate cannot be encoded (``UnicodeEncodeError``), as with row inserts; OTLP
ingest strips both before rows get here (``telemetry.otlp.mapping.clean``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

_UNIQUE_VIOLATION = "23505"
_TYPES = "aiops_copy_types"


def _column_types(conn: Connection, table: str, fields: tuple[str, ...]) -> list[int]:
    """The type oids of ``table``'s ``fields`` (binary COPY must name them), asked once per connection."""
    known = conn.connection.info.setdefault(_TYPES, {})
    types = known.get((table, fields))
    if types is None:
        by_name = dict(conn.exec_driver_sql(
            "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND NOT attisdropped", (table,)).all())
        types = known[(table, fields)] = [by_name[name] for name in fields]
    return types


def _copy(cursor, table: str, fields: tuple[str, ...], types: list[int], rows: Sequence[tuple]) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(fields)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def copy_rows(conn: Connection, table: str, fields: tuple[str, ...], rows: Sequence[tuple]) -> None:
    """``rows`` into ``table`` in ``conn``'s transaction: for rows with no identity (logs, metric points)."""
    types = _column_types(conn, table, fields)
    with conn.connection.cursor() as cursor:
        _copy(cursor, table, fields, types, rows)


def copy_new_rows(conn: Connection, table: str, fields: tuple[str, ...], rows: Sequence[tuple]) -> None:
    """``rows`` into ``table`` in ``conn``'s transaction, but those its unique index already holds
    (or that repeat one earlier in ``rows``).

    First straight into the table inside a savepoint: a batch seen for the first time, nearly
    every batch, costs one COPY. A unique violation (a client retrying a batch we stored, an
    exporter repeating a span, or a concurrent writer of the same span, which the index makes us
    wait for) rolls that back; the batch then goes into a temporary table dropped at commit, and
    from there into ``table`` with ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``. Always going
    through the temporary table cost a third of the rate (docs/performance.md).
    """
    types = _column_types(conn, table, fields)
    with conn.connection.cursor() as cursor:
        try:
            with conn.begin_nested():
                _copy(cursor, table, fields, types, rows)
            return
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
                raise
        columns = ", ".join(fields)
        cursor.execute(f"CREATE TEMP TABLE aiops_copy_{table} ON COMMIT DROP AS "
                       f"SELECT {columns} FROM {table} WITH NO DATA")
        _copy(cursor, f"aiops_copy_{table}", fields, types, rows)
        cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM aiops_copy_{table} "
                       "ON CONFLICT DO NOTHING")
