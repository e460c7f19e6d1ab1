"""Schema migrations (Alembic), run by `pawpost db upgrade` and by the tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from threads.db import make_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads", *, secret_key: Callable[[], str] | None = None) -> None:
    """Bring the database to the newest schema; a no-op when it already is.

    "heads", not "head": parts of Pawpost may add migrations side by side before a merge
    revision joins them, and every one of them must run. `secret_key` gives the deployment's
    PAWPOST_SECRET_KEY to migrations that seal data with it (asked only when one has data to
    seal: 0016d_webhook_secret_encrypted).
    """
    config = alembic_config(database_url)
    if secret_key is not None:
        config.attributes["secret_key"] = secret_key
    command.upgrade(config, revision)


def recreate_schema(database_url: str) -> None:
    """Empty a PostgreSQL database (drop its public schema) and migrate it afresh.

    For the test and benchmark databases only: everything in the schema is lost.
    """
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    upgrade(database_url)


def current_revision(database_url: str) -> str | None:
    """The applied revision(s), comma-separated; None for an empty database."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            heads = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    return ", ".join(sorted(heads)) or None
