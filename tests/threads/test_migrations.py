"""The Alembic history builds exactly the schema the models describe, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

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
