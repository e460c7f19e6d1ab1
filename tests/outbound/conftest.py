"""Outbound fixtures: settings with a fake-clock-friendly memory queue, a real SMTP relay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from outbound.queue import configure_queue, huey
from pawpost.settings import Settings
from tests.factories import MAIL_DOMAIN
from tests.outbound.smtp_sink import RecordingHandler, running_sink
from threads.db import make_session_factory


def make_settings(database_url: str, data_dir: Path, **env: str) -> Settings:
    values = {
        "PAWPOST_DATA_DIR": str(data_dir),
        "PAWPOST_DATABASE_URL": database_url,
        "PAWPOST_QUEUE_URL": "memory://",
        "PAWPOST_REPLY_DOMAIN": MAIL_DOMAIN,
        "PAWPOST_PUBLIC_URL": "https://portal.test",
        "PAWPOST_SECRET_KEY": "outbound-tests-secret-key-0123456789",
    }
    values.update(env)
    return Settings.from_env(values)


@pytest.fixture
def sink() -> Iterator[tuple[RecordingHandler, int]]:
    with running_sink() as running:
        yield running


@pytest.fixture
def settings(database_url: str, tmp_path: Path, sink: tuple[RecordingHandler, int]) -> Iterator[Settings]:
    """Outbound configured on the test database, a memory queue and the recording relay."""
    settings = make_settings(database_url, tmp_path, PAWPOST_OUTBOUND_URL=f"smtp://127.0.0.1:{sink[1]}")
    configure_queue(settings)
    yield settings
    huey.storage.flush_all()


@pytest.fixture
def sessions(engine: Engine):  # type: ignore[no-untyped-def]
    return make_session_factory(engine)
