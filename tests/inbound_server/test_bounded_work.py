"""Bounded work per email (issue 11): the extraction holds no database lock, and a flood
into one thread or from one sender is held in quarantine instead of filling the thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import inbound.ingest
from inbound.quarantine import release
from inbound.reply_text import Reply
from inbound.server import running_smtp_server
from outbound.queue import configure_queue
from pawpost.settings import Settings
from tests.factories import make_family
from tests.inbound_server import queries
from tests.inbound_server.conftest import World, make_settings
from tests.inbound_server.mail import reply_email, send
from threads.addresses import reply_address
from threads.db import normalise_url
from threads.models import Business, Contact, InboundEmail, Thread
from tests.factories import MAIL_DOMAIN
from threads.types import utcnow


def _writer_lock_free(engine: Engine, database_url: str) -> bool:
    """Whether another connection could write now: the lock the SMTP server's INSERT needs."""
    url = make_url(normalise_url(database_url))
    if url.get_backend_name() == "sqlite":
        other = sqlite3.connect(url.database or "", timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            other.close()
    with engine.connect() as connection:
        try:
            connection.execute(text("SELECT id FROM inbound_emails WHERE outcome = 'received' FOR UPDATE NOWAIT")).all()
            return True
        except OperationalError:
            return False
        finally:
            connection.rollback()


def test_the_reply_is_extracted_outside_the_write_transaction(
    smtp: tuple[str, int], world: World, engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow extraction must never hold the lock every SMTP accept waits for (SQLite's one
    writer lock; the stored row's lock on PostgreSQL)."""
    seen: list[bool] = []
    real = inbound.ingest.extract_reply

    def extract_and_look(text_part: str | None, html: str | None, *, sender: str | None = None) -> Reply:
        seen.append(_writer_lock_free(engine, database_url))
        return real(text_part, html, sender=sender)

    monkeypatch.setattr(inbound.ingest, "extract_reply", extract_and_look)
    host, port = smtp
    assert send(host, port, world.primary_email, world.reply_to, reply_email(world.primary_email, world.reply_to))[0] == 250

    assert seen == [True]
    [message] = queries.messages(engine, world.thread_id)
    assert message.body == "Bella loved her walk, thank you!"


@pytest.fixture
def limited(database_url: str, tmp_path: Path) -> Iterator[tuple[Settings, tuple[str, int]]]:
    settings = make_settings(database_url, tmp_path, PAWPOST_INBOUND_RATE_PER_MINUTE="3")
    configure_queue(settings)
    with running_smtp_server(settings) as address:
        yield settings, address


def _held(engine: Engine) -> list[InboundEmail]:
    return [r for r in queries.inbound(engine) if r.outcome == "quarantined"]


def test_a_flood_into_one_thread_is_held_in_quarantine_and_can_be_released(
    limited: tuple[Settings, tuple[str, int]], world: World, engine: Engine
) -> None:
    _settings, (host, port) = limited
    for n in range(4):
        raw = reply_email(world.primary_email, world.reply_to, f"Loop {n}", quote=None)
        assert send(host, port, world.primary_email, world.reply_to, raw)[0] == 250  # never refused, never dropped

    assert [m.body for m in queries.messages(engine, world.thread_id)] == ["Loop 0", "Loop 1", "Loop 2"]
    [held] = _held(engine)
    assert held.reason is not None and held.reason.startswith("rate_limited")

    with Session(engine) as session, session.begin():
        row = session.get(InboundEmail, held.id)
        assert row is not None
        message = release(session, row, session.get(Contact, world.primary_id), add_alias=False, reviewer=None, now=utcnow())  # type: ignore[arg-type]
        assert message.body == "Loop 3"
    assert [r.outcome for r in queries.inbound(engine)] == ["posted"] * 3 + ["released"]


def test_a_flood_from_one_sender_across_threads_is_held(
    limited: tuple[Settings, tuple[str, int]], world: World, engine: Engine
) -> None:
    _settings, (host, port) = limited
    with Session(engine) as session, session.begin():
        business = session.get(Business, world.business_id)
        assert business is not None
        other = session.scalars(select(Thread).where(Thread.family_id == make_family(session, business).id)).one()
        other_reply_to = reply_address(other, MAIL_DOMAIN)
        other_id = other.id
    targets = [world.reply_to, other_reply_to, world.reply_to, other_reply_to]
    for n, to in enumerate(targets):
        raw = reply_email(world.senior_email, to, f"Update {n}", quote=None)
        assert send(host, port, world.senior_email, to, raw)[0] == 250

    posted = [m.body for m in queries.messages(engine, world.thread_id)] + [m.body for m in queries.messages(engine, other_id)]
    assert sorted(posted) == ["Update 0", "Update 1", "Update 2"]
    [held] = _held(engine)
    assert held.reason is not None and "from this sender" in held.reason and held.thread_id == other_id
