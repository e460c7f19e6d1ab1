"""What one client (or a crowd) can hold of the SMTP server, over real sockets (issue 11,
points 14 and 15): sessions per address, DATA in flight, a group commit's bytes, a
session's total length and its command budget. Every refusal is a temporary 4xx with an
RFC 3463 code, so a real MTA retries later and no mail is lost."""

from __future__ import annotations

import smtplib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

import inbound.batching
import inbound.server
from inbound.server import running_smtp_server, start_smtp_server
from pawpost.settings import Settings
from tests.inbound_server import queries
from tests.inbound_server.conftest import World
from tests.inbound_server.mail import reply_email, send, transaction


def _greeting(host: str, port: int) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection((host, port), timeout=10)
    return sock, sock.recv(1024)


def _lines_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(1024):
        received += chunk
    return received


def test_sessions_beyond_the_per_client_limit_are_refused_with_421(
    settings: Settings, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbound.server, "MAX_SESSIONS_PER_CLIENT", 2)
    with running_smtp_server(settings) as (host, port):
        first, hello1 = _greeting(host, port)
        second, hello2 = _greeting(host, port)
        third, refused = _greeting(host, port)
        assert hello1.startswith(b"220") and hello2.startswith(b"220")
        assert refused.startswith(b"421 4.7.0 ")
        assert _lines_until_closed(third) == b""  # and the server closed it
        third.close()
        first.sendall(b"QUIT\r\n")
        _lines_until_closed(first)
        first.close()
        # One left: a new session from the same address is welcome again.
        assert send(host, port, world.primary_email, world.reply_to, reply_email(world.primary_email, world.reply_to))[0] == 250
        second.close()


def test_a_data_transfer_beyond_the_in_flight_limit_is_deferred_with_451(
    settings: Settings, world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbound.server, "MAX_DATA_IN_FLIGHT", 1)
    with running_smtp_server(settings) as (host, port):
        slow = transaction(host, port, world.primary_email, world.reply_to)
        slow.putcmd("data")
        assert slow.getreply()[0] == 354  # a transfer in progress holds the one slot
        other = transaction(host, port, world.secondary_email, world.reply_to)
        code, text = other.docmd("DATA")
        assert (code, text.decode()[:5]) == (451, "4.3.2")
        raw = reply_email(world.primary_email, world.reply_to, "Slow but sure")
        slow.send(raw.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
        assert slow.getreply()[0] == 250
        slow.quit()
        # The slot is free again: the deferred sender's retry goes through.
        other.rset()
        assert other.mail(world.secondary_email)[0] == 250 and other.rcpt(world.reply_to)[0] == 250
        assert other.data(reply_email(world.secondary_email, world.reply_to, "Retried"))[0] == 250
        other.quit()
    assert sorted(m.body for m in queries.messages(engine, world.thread_id)) == ["Retried", "Slow but sure"]


def test_one_group_commit_carries_at_most_max_batch_bytes(
    settings: Settings, world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 100_000
    monkeypatch.setattr(inbound.batching, "MAX_BATCH_BYTES", cap)
    controller, cleanup = start_smtp_server(settings)
    answers: list[int] = []
    try:
        host, port = controller.bound_host, controller.bound_port
        start = threading.Barrier(8)

        def deliver(n: int) -> None:
            raw = reply_email(world.primary_email, world.reply_to, f"Long news {n}\n" + "Bella ran and ran. " * 3000)
            start.wait()
            answers.append(send(host, port, world.primary_email, world.reply_to, raw)[0])

        senders = [threading.Thread(target=deliver, args=(n,)) for n in range(8)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        heaviest = controller.handler.writer.batcher.heaviest_batch
    finally:
        controller.stop_gracefully()
        cleanup()
    assert answers == [250] * 8
    assert 0 < heaviest <= cap
    assert len(queries.messages(engine, world.thread_id)) == 8


@pytest.fixture
def short_sessions(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    monkeypatch.setattr(inbound.server, "MAX_SESSION_SECONDS", 1)
    with running_smtp_server(settings) as address:
        yield address


def test_a_session_kept_open_with_noop_is_closed_at_its_deadline_with_421(short_sessions: tuple[str, int]) -> None:
    host, port = short_sessions
    client = smtplib.SMTP(host, port, timeout=10)
    client.ehlo("tests.local")
    assert client.noop()[0] == 250
    time.sleep(1.5)  # past the session's total deadline, each command well within aiosmtpd's own timeout
    sock = client.sock
    assert sock is not None
    assert _lines_until_closed(sock).startswith(b"421 4.4.2 ")
    client.close()


def test_a_session_over_its_command_budget_is_closed_with_421(smtp: tuple[str, int]) -> None:
    host, port = smtp
    client = smtplib.SMTP(host, port, timeout=10)
    client.ehlo("tests.local")
    answers = [client.noop()[0] for _ in range(inbound.server.COMMAND_LIMITS["NOOP"])]
    assert answers == [250] * inbound.server.COMMAND_LIMITS["NOOP"]
    code, text = client.docmd("NOOP")
    assert (code, text.decode()[:5]) == (421, "4.7.0")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()
    client.close()


def test_declared_sizes_beyond_the_bytes_in_flight_budget_are_deferred_with_451(
    settings: Settings, world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MTAs declare each email's size at MAIL (RFC 1870): big transfers at once are held to a byte budget."""
    monkeypatch.setattr(inbound.server, "MAX_DATA_BYTES_IN_FLIGHT", 100_000)
    with running_smtp_server(settings) as (host, port):
        big = smtplib.SMTP(host, port, timeout=30)
        big.ehlo("tests.local")
        assert big.mail(world.primary_email, ["SIZE=80000"])[0] == 250 and big.rcpt(world.reply_to)[0] == 250
        big.putcmd("data")
        assert big.getreply()[0] == 354
        other = smtplib.SMTP(host, port, timeout=30)
        other.ehlo("tests.local")
        assert other.mail(world.secondary_email, ["SIZE=50000"])[0] == 250 and other.rcpt(world.reply_to)[0] == 250
        code, text = other.docmd("DATA")
        assert (code, text.decode()[:5]) == (451, "4.3.2")
        small = reply_email(world.secondary_email, world.reply_to, "A small one fits")
        assert send(host, port, world.secondary_email, world.reply_to, small)[0] == 250  # undeclared: counted, not weighed
        raw = reply_email(world.primary_email, world.reply_to, "The big one")
        big.send(raw + b"\r\n.\r\n")
        assert big.getreply()[0] == 250
        big.quit()
        other.quit()
    assert sorted(m.body for m in queries.messages(engine, world.thread_id)) == ["A small one fits", "The big one"]
