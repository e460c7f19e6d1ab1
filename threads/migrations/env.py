"""Alembic environment: the URL comes from the config Pawpost builds, never a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from threads.db import make_engine
from threads.models import Base
from threads.search import not_search_index


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        _run_without_foreign_keys(connection)
        return
    _migrate(connection)


def _run_without_foreign_keys(connection: Connection) -> None:
    """SQLite alters a table by rebuilding it (batch mode): with foreign keys on, dropping
    the old `messages` would cascade-delete every attachment and set posted messages to null.
    So, as SQLite's own ALTER TABLE recipe says, foreign keys go off (outside any transaction:
    inside one the pragma does nothing) and the result is checked before it commits."""
    raw = connection.connection.driver_connection
    assert raw is not None and not connection.in_transaction()
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        _migrate(connection)
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        # SQLite's DDL is transactional too (Alembic assumes not): one upgrade, one transaction,
        # so a migration that refuses leaves the database as it found it, as on PostgreSQL.
        transactional_ddl=True,
        compare_type=True,
        include_name=not_search_index,
    )
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration left rows pointing at missing rows: {broken[:5]}")


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


run_migrations_online()
