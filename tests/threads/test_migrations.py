"""The Alembic history builds exactly the schema the models describe, on both databases."""

from __future__ import annotations

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
