"""Issue 11, point 15 (auto-replies): one system note per sender, thread and business day,
even when a sender's auto-replies are processed at the same moment by several workers."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from inbound.ingest import process_stored_email
from inbound.server import running_smtp_server
from inbound.tasks import queue_is_local
from outbound.queue import configure_queue, huey
from pawpost.settings import Settings
from tests.inbound_server import queries
from tests.inbound_server.conftest import World, make_settings
from tests.inbound_server.mail import reply_email, send
from threads.db import make_engine, make_session_factory
from threads.models import AutoReplyNote, Contact, ContactAddress, Thread

SENDERS = 12
COPIES = 3


@pytest.fixture
def stored_only(database_url: str, tmp_path: Path) -> Iterator[Settings]:
    """A queue no worker reads: the server stores each email and leaves it `received`."""
    settings = make_settings(database_url, tmp_path, PAWPOST_QUEUE_URL=f"sqlite:///{tmp_path / 'queue.sqlite3'}")
    configure_queue(settings)
    assert not queue_is_local()
    yield settings
    huey.flush()
    configure_queue(make_settings(database_url, tmp_path))


def add_contacts(engine: Engine, world: World, count: int) -> list[tuple[str, str]]:
    """(name, address) of `count` more contacts of the world's family."""
    people = [(f"Parent {n}", f"parent{n}@parents.test") for n in range(count)]
    with Session(engine) as session, session.begin():
        family = session.get(Thread, world.thread_id).family
        for name, address in people:
            family.contacts.append(Contact(name=name, is_primary=False, addresses=[ContactAddress(email=address, verified=True)]))
    return people


def out_of_office(sender: str, to: str, n: int) -> bytes:
    return reply_email(
        sender,
        to,
        "I am out of the office until Monday.",
        quote=None,
        subject="Automatic reply: New messages about Bella",
        message_id=f"<ooo-{n}@{sender.split('@')[1]}>",
        headers={"Auto-Submitted": "auto-replied"},
    )


def test_concurrent_auto_replies_post_one_note_per_sender_and_day(stored_only: Settings, world: World, engine: Engine) -> None:
    people = add_contacts(engine, world, SENDERS)
    with running_smtp_server(stored_only) as (host, port):
        for copy in range(COPIES):
            for index, (_, address) in enumerate(people):
                raw = out_of_office(address, world.reply_to, copy * SENDERS + index)
                assert send(host, port, address, world.reply_to, raw)[0] == 250
    by_sender: dict[str, list[int]] = {}
    for row in queries.inbound(engine):
        by_sender.setdefault(row.envelope_from, []).append(row.id)
    assert len(by_sender) == SENDERS and all(len(v) == COPIES for v in by_sender.values())

    # Each round, the copies of four senders' auto-replies are processed at the same moment.
    workers_engine = make_engine(stored_only.database_url)
    sessions = make_session_factory(workers_engine)
    senders = [address for _, address in people]
    rounds = [senders[r::COPIES] for r in range(COPIES)]
    start = threading.Barrier(len(rounds[0]) * COPIES)
    errors: list[BaseException] = []

    def work(position: int) -> None:
        try:
            for round_senders in rounds:
                email_id = by_sender[round_senders[position // COPIES]][position % COPIES]
                start.wait()
                process_stored_email(sessions, stored_only, email_id)
        except BaseException as error:  # reported below, with the thread's own traceback
            errors.append(error)
            start.abort()

    threads = [threading.Thread(target=work, args=(position,)) for position in range(len(rounds[0]) * COPIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    workers_engine.dispose()
    assert errors == []

    notes = [m for m in queries.messages(engine, world.thread_id) if m.author_type == "system"]
    noted = Counter(note.body.split(":")[0] for note in notes)
    assert noted == Counter({f"Auto-reply from {name}": 1 for name, _ in people})
    assert Counter(r.outcome for r in queries.inbound(engine)) == Counter({"auto_reply": SENDERS * COPIES})
    with Session(engine) as session:
        keys = session.execute(select(AutoReplyNote.sender, AutoReplyNote.message_id)).all()
    assert sorted(sender for sender, _ in keys) == sorted(senders)
    assert {message_id for _, message_id in keys} == {note.id for note in notes}
