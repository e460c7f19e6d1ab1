"""Faults: the database gone during DATA (one session or a whole group commit), and many
copies of one email at once."""

from __future__ import annotations

import smtplib
import threading

import pytest

from sqlalchemy import Engine

from inbound.server import running_smtp_server
from pawpost.settings import Settings
from tests.inbound_server import queries
from tests.inbound_server.conftest import Outage, World
from tests.inbound_server.mail import reply_email, send, transaction


def test_the_database_down_during_data_gives_451_stores_nothing_and_the_resend_posts_once(
    settings: Settings, world: World, engine: Engine, outage: Outage
) -> None:
    raw = reply_email(world.primary_email, world.reply_to, message_id="<retry-1@parents.test>")
    with running_smtp_server(settings, outage.session_factory) as (host, port):
        client = transaction(host, port, world.primary_email, world.reply_to)
        outage.begin()
        try:
            code, text = client.data(raw)
        finally:
            outage.end()
            client.close()
        assert (code, text.decode()) == (451, "4.3.0 Temporary failure, please try again later")
        assert queries.inbound_count(engine) == 0
        assert queries.messages(engine, world.thread_id) == []

        # The sending MTA retries once the database is back: posted exactly once.
        assert send(host, port, world.primary_email, world.reply_to, raw)[0] == 250
        assert send(host, port, world.primary_email, world.reply_to, raw)[0] == 250

    [message] = queries.messages(engine, world.thread_id)
    assert message.body == "Bella loved her walk, thank you!"
    assert [r.outcome for r in queries.inbound(engine)] == ["posted", "duplicate"]


def test_the_database_down_at_rcpt_gives_451_not_a_refusal(settings: Settings, world: World, outage: Outage) -> None:
    with running_smtp_server(settings, outage.session_factory) as (host, port):
        outage.begin()
        try:
            answer = send(host, port, world.primary_email, world.reply_to, reply_email(world.primary_email, world.reply_to))
        finally:
            outage.end()

    assert answer == (451, "4.3.0 Temporary failure, please try again later")


def test_ten_concurrent_deliveries_of_the_same_email_post_once(smtp, world: World, engine: Engine) -> None:
    raw = reply_email(world.primary_email, world.reply_to, message_id="<burst-1@parents.test>")
    start = threading.Barrier(10)
    answers: list[int] = []

    def deliver() -> None:
        start.wait()
        answers.append(send(*smtp, world.primary_email, world.reply_to, raw)[0])

    workers = [threading.Thread(target=deliver) for _ in range(10)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert answers == [250] * 10
    assert len(queries.messages(engine, world.thread_id)) == 1
    outcomes = sorted(r.outcome for r in queries.inbound(engine))
    assert outcomes == ["duplicate"] * 9 + ["posted"]


def test_concurrent_sessions_all_get_451_when_their_commit_fails_and_all_post_on_resend(
    settings: Settings, world: World, engine: Engine, outage: Outage
) -> None:
    raws = [reply_email(world.primary_email, world.reply_to, f"Note {n}", message_id=f"<batch-{n}@parents.test>") for n in range(5)]
    with running_smtp_server(settings, outage.session_factory) as (host, port):
        clients = [transaction(host, port, world.primary_email, world.reply_to) for _ in raws]
        start = threading.Barrier(len(raws))
        answers: list[tuple[int, bytes]] = []

        def data(client: smtplib.SMTP, raw: bytes) -> None:
            start.wait()
            answers.append(client.data(raw))

        outage.begin()
        try:
            workers = [threading.Thread(target=data, args=pair) for pair in zip(clients, raws)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        finally:
            outage.end()
            for client in clients:
                client.close()
        assert answers == [(451, b"4.3.0 Temporary failure, please try again later")] * len(raws)
        assert queries.inbound_count(engine) == 0

        assert [send(host, port, world.primary_email, world.reply_to, raw)[0] for raw in raws] == [250] * len(raws)

    assert sorted(m.body for m in queries.messages(engine, world.thread_id)) == [f"Note {n}" for n in range(5)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_connections_the_database_dropped_between_emails_are_replaced_without_a_451(
    settings: Settings, world: World, engine: Engine, outage: Outage
) -> None:
    """The server keeps its connections open between emails; after the database dropped
    them (a restart, a failover), the next sender still gets 250 and the reply is posted."""
    first = reply_email(world.primary_email, world.reply_to, "Note 1", message_id="<kept-1@parents.test>")
    second = reply_email(world.primary_email, world.reply_to, "Note 2", message_id="<kept-2@parents.test>")
    with running_smtp_server(settings, outage.session_factory) as (host, port):
        assert send(host, port, world.primary_email, world.reply_to, first)[0] == 250
        outage.begin()  # every open connection is cut ...
        outage.end()  # ... and the database takes new ones again
        assert send(host, port, world.primary_email, world.reply_to, second) == (250, "2.0.0 Message accepted")

    assert sorted(m.body for m in queries.messages(engine, world.thread_id)) == ["Note 1", "Note 2"]
