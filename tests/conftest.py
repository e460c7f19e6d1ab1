"""Shared fixtures: a real database on SQLite and on PostgreSQL, and the rules for skipping.

PostgreSQL, Redis and Chromium tests skip with a reason when the service is missing, except
under `CI=true`, where a missing service fails the run instead of hiding tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from threads import migrate
from threads.db import make_engine, make_session_factory
from threads.models import Base

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("PAWPOST_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PAWPOST_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CHROMIUM = os.environ.get("PAWPOST_TEST_CHROMIUM", "/usr/bin/chromium")


def require(available: bool, reason: str) -> None:
    """Skip when a service is missing, but fail under CI=true, where everything must run."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def postgres_reason() -> str | None:
    """None when PostgreSQL answers, else why not (cached for the run)."""
    if not hasattr(postgres_reason, "cached"):
        engine = make_engine(PG_URL)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            postgres_reason.cached = None  # type: ignore[attr-defined]
        except Exception as error:  # any failure to connect means "not available"
            first = str(error).strip().splitlines()[0]
            postgres_reason.cached = f"PostgreSQL unreachable at {PG_URL}: {first}"  # type: ignore[attr-defined]
        finally:
            engine.dispose()
    return postgres_reason.cached  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    reason = postgres_reason()
    require(reason is None, reason or "")
    migrate.recreate_schema(PG_URL)
    engine = make_engine(PG_URL)
    yield engine
    engine.dispose()


def _truncate(engine: Engine) -> None:
    names = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL: a fresh SQLite file, or the emptied PostgreSQL test DB."""
    if request.param == "sqlite":
        path = tmp_path / "pawpost.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        engine = request.getfixturevalue("postgres_engine")
        _truncate(engine)
        yield PG_URL


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session on a real database; tests commit like the callers of the core do."""
    session = make_session_factory(engine)()
    yield session
    session.rollback()
    session.close()
