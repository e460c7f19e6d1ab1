"""The benchmarks' own PostgreSQL databases: created when missing, emptied, migrated."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from threads import migrate
from threads.db import normalise_url


def create_database_if_missing(url: str) -> None:
    """A fresh machine has only `test`: the benchmarks make their own database rather than fail."""
    parsed = make_url(normalise_url(url))
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database})
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def prepare_database(url: str) -> None:
    """Create the bench database if needed, then empty it and migrate it to the newest schema."""
    create_database_if_missing(url)
    migrate.recreate_schema(url)
