"""The Alembic history builds exactly the schema the models describe, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, inspect, text

from threads.db import make_engine

from threads.models import Base
from threads.search import not_search_index


def test_upgrade_from_empty_equals_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": not_search_index})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_0016d_seals_existing_webhook_secrets_with_the_deployments_key(database_url: str) -> None:
    """Secrets stored in clear before 0016d are sealed by the upgrade itself; without the key
    the upgrade refuses and changes nothing."""
    from alembic import command
    from sqlalchemy import text

    from threads import migrate
    from threads.db import make_engine
    from threads.sealing import unseal

    secret, key = "whsec_" + "Q" * 43 + "=", "migration-tests-key-0123456789"
    config = migrate.alembic_config(database_url)
    command.downgrade(config, "0015_merge")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            business_id = connection.execute(text(
                "INSERT INTO businesses (slug, name, timezone, sender_name, created_at, require_admin_two_factor)"
                " VALUES ('old-hooks', 'Old Hooks', 'UTC', 'Old Hooks', CURRENT_TIMESTAMP, false) RETURNING id"
            )).scalar_one()
            connection.execute(text(
                "INSERT INTO webhook_endpoints (business_id, url, events, secret, active, created_at)"
                " VALUES (:b, 'https://crm.example.test/in', 'message.created', :s, true, CURRENT_TIMESTAMP)"
            ), {"b": business_id, "s": secret})
        with pytest.raises(RuntimeError, match="PAWPOST_SECRET_KEY"):
            migrate.upgrade(database_url)
        assert migrate.current_revision(database_url) == "0015_merge"
        migrate.upgrade(database_url, secret_key=lambda: key)
        with engine.connect() as connection:
            row = connection.execute(text("SELECT * FROM webhook_endpoints")).mappings().one()
        assert "secret" not in row and secret[6:30] not in " ".join(map(str, row.values()))
        assert unseal(key, row["sealed_secret"]) == secret
    finally:
        migrate.upgrade(database_url, secret_key=lambda: key)
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM businesses WHERE slug = 'old-hooks'"))
        engine.dispose()


def _row(connection: Connection, table: str, **values: object) -> None:
    """A row with `values` and a plain value in every other required column (as of the
    revision the database is at: a migration test cannot use today's models)."""
    for column in inspect(connection).get_columns(table):
        if column["name"] in values or column["nullable"] or column.get("default") is not None or column.get("autoincrement") is True:
            continue
        kind = column["type"].python_type if hasattr(column["type"], "python_type") else str
        filler: object = {int: 1, bool: False, bytes: b"x", str: "x", datetime: datetime(2026, 1, 1, tzinfo=UTC)}.get(kind, "x")
        values[column["name"]] = filler
    names = ", ".join(values)
    connection.execute(text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + n for n in values)})"), values)


@contextmanager
def _thread_at(database_url: str, revision: str, n: int, slug: str) -> Iterator[Engine]:
    """The database downgraded to `revision` with business, family and thread `n` (slug
    `slug`) in it; upgraded again and cleaned after the test, whatever happened."""
    from threads import migrate

    command.downgrade(migrate.alembic_config(database_url), revision)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            _row(connection, "businesses", id=n, slug=slug, name=slug.title(), timezone="UTC", sender_name=slug.title())
            _row(connection, "families", id=n, business_id=n, external_id=f"{slug}-1", name=f"{slug} family")
            _row(connection, "threads", id=n, business_id=n, family_id=n, reply_token=f"{slug}token".replace("-", ""), root_message_id=f"{slug}@files.test")
        yield engine
    finally:
        _upgrade(database_url)
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM businesses WHERE slug = :slug"), {"slug": slug})
        engine.dispose()


def _upgrade(database_url: str) -> None:
    from threads import migrate

    migrate.upgrade(database_url, secret_key=lambda: "migration-tests-key-0123456789")


def test_an_upgrade_that_rebuilds_messages_keeps_their_attachments(database_url: str) -> None:
    """On SQLite a CHECK change rebuilds `messages` (0016d_business_author); with foreign keys
    on, dropping the old table deleted every attachment of a deployment that upgraded."""
    with _thread_at(database_url, "0015_merge", 9001, "kept-files") as engine:
        with engine.begin() as connection:
            _row(connection, "messages", id=9001, thread_id=9001, author_type="system", source="system", body="photo")
            _row(connection, "attachments", id=9001, message_id=9001, filename="bella.jpg", content_type="image/jpeg", size=1, sha256="0" * 64, content=b"x")
        _upgrade(database_url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT filename FROM attachments WHERE message_id = 9001")).scalars().all() == ["bella.jpg"]


def test_0018a_lets_the_api_be_a_source_and_search_still_follows_the_messages(database_url: str) -> None:
    """The CHECK change rebuilds `messages` on SQLite, which drops the search index's
    triggers: the messages from before and after the upgrade must both still be found."""
    with _thread_at(database_url, "0017_merge", 9002, "api-source") as engine:
        with engine.begin() as connection:
            _row(connection, "messages", id=9002, thread_id=9002, author_type="system", source="system", body="zebrafinch before")
        _upgrade(database_url)
        with engine.begin() as connection:
            _row(connection, "messages", id=9003, thread_id=9002, author_type="business", source="api", body="zebrafinch after")
            if connection.dialect.name == "sqlite":
                found = connection.execute(text("SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'zebrafinch' ORDER BY rowid"))
            else:
                found = connection.execute(text("SELECT id FROM messages WHERE body_tsv @@ to_tsquery('simple', 'zebrafinch') ORDER BY id"))
            assert found.scalars().all() == [9002, 9003]
