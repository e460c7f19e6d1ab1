"""Faults at the relay: a real aiosmtpd server that is down, busy or refusing."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select, update

from outbound import tasks
from outbound.ids import parse_verp, verp_sender
from outbound.queue import configure_queue
from outbound.transport import send_raw
from tests.outbound.conftest import make_settings
from tests.outbound.smtp_sink import RecordingHandler, running_sink
from tests.outbound.world import T0, build_world, outbox_rows, post
from threads.models import ContactAddress

DUE = T0 + timedelta(seconds=180)
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _addresses(rows) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(row.recipient_email for row in rows)


def test_relay_down_then_up_delivers_once(database_url: str, tmp_path: Path, sessions) -> None:
    port = _closed_port()
    configure_queue(make_settings(database_url, tmp_path, PAWPOST_OUTBOUND_URL=f"smtp://127.0.0.1:{port}"))
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Walk done", T0)

    tasks.run_digests([world.thread_id], now=DUE)  # nothing listens on the relay's port
    rows = outbox_rows(sessions, "digest")
    assert [row.state for row in rows] == ["queued", "queued"]
    assert all(row.attempts == 1 and "unavailable" in (row.last_error or "") for row in rows)

    with running_sink(port=port) as (handler, _):
        assert tasks.run_sweep(DUE + timedelta(seconds=10)).outbox_ids == []  # not before the retry time
        for seconds in (40, 45, 400):
            now = DUE + timedelta(seconds=seconds)
            tasks.run_due_inline(tasks.run_sweep(now), now)
        delivered = sorted(r for item in handler.received for r in item.rcpt_tos)

    assert delivered == sorted([world.primary_email, world.secondary_email])
    assert [row.state for row in outbox_rows(sessions, "digest")] == ["sent", "sent"]


@sqlite_only
def test_a_4xx_answer_retries_and_then_delivers_once(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Walk done", T0)
    handler.answer = "451 4.3.0 greylisted, try again later"
    tasks.run_digests([world.thread_id], now=DUE)
    rows = outbox_rows(sessions, "digest")
    assert all(row.state == "queued" and "451" in (row.last_error or "") for row in rows)

    handler.answer = None
    now = DUE + timedelta(seconds=31)
    tasks.run_due_inline(tasks.run_sweep(now), now)
    tasks.run_due_inline(tasks.run_sweep(now + timedelta(minutes=5)), now + timedelta(minutes=5))
    assert len(handler.received) == 2
    assert {row.state for row in outbox_rows(sessions, "digest")} == {"sent"}


@sqlite_only
def test_a_5_1_x_answer_is_final_and_marks_the_address_bouncing(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Walk done", T0)
    handler.answer = "550 5.1.1 no such mailbox"
    tasks.run_digests([world.thread_id], now=DUE)
    handler.answer = None

    rows = outbox_rows(sessions, "digest")
    assert {row.state for row in rows} == {"bounced"}
    assert all("5.1.1" in (row.last_error or "") for row in rows)
    with sessions() as session:
        bouncing = session.scalars(select(ContactAddress.email).where(ContactAddress.bouncing)).all()
    assert sorted(bouncing) == sorted([world.primary_email, world.secondary_email])

    # Nothing retries a final answer, and bouncing addresses get no further digests.
    post(sessions, world, ("staff", world.walker_id), "Another walk", T0 + timedelta(minutes=10))
    later = T0 + timedelta(minutes=20)
    tasks.run_due_inline(tasks.run_sweep(later), later)
    assert handler.received == []
    assert len(outbox_rows(sessions, "digest")) == 2


@sqlite_only
def test_other_5xx_answers_fail_without_marking_the_address(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Walk done", T0)
    handler.answer = "554 5.7.1 policy rejection"
    tasks.run_digests([world.thread_id], now=DUE)
    assert {row.state for row in outbox_rows(sessions, "digest")} == {"failed"}
    with sessions() as session:
        assert session.scalars(select(ContactAddress).where(ContactAddress.bouncing)).all() == []


@sqlite_only
def test_a_row_for_an_address_that_started_bouncing_is_not_sent_and_says_why(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Walk done", T0)
    handler.answer = "451 4.3.0 later"
    tasks.run_digests([world.thread_id], now=DUE)
    handler.answer = None
    with sessions() as session, session.begin():
        address = session.scalar(select(ContactAddress).where(ContactAddress.email == world.primary_email))
        address.bouncing, address.bounce_reason = True, "bounce report: 5.1.1 user unknown"
    later = DUE + timedelta(minutes=2)
    tasks.run_due_inline(tasks.run_sweep(later), later)
    rows = {row.recipient_email: row for row in outbox_rows(sessions, "digest")}
    assert rows[world.primary_email].state == "failed"
    assert "bouncing" in (rows[world.primary_email].last_error or "")
    assert rows[world.secondary_email].state == "sent"
    assert [item.rcpt_tos for item in handler.received] == [[world.secondary_email]]


@pytest.mark.parametrize("flagged_after", [False, True])
def test_a_delivery_the_relay_accepts_after_a_bounce_flag_clears_it(settings, sessions, sink, flagged_after: bool) -> None:
    """A report about an earlier email lands while the next one is on its way; the relay
    then accepts the next one: the address works, the flag clears (a newer flag stays)."""
    handler, _ = sink
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Walk done", T0)
    flagged_at = DUE + timedelta(minutes=1) if flagged_after else DUE - timedelta(seconds=1)

    def bounce_lands(address: str) -> None:
        if address == world.primary_email:
            with sessions() as session, session.begin():
                session.execute(
                    update(ContactAddress)
                    .where(ContactAddress.email == world.primary_email)
                    .values(bouncing=True, bounced_at=flagged_at, bounce_reason="5.1.1 reported for an earlier email")
                )

    handler.on_rcpt = bounce_lands
    tasks.run_digests([world.thread_id], now=DUE)

    assert {row.state for row in outbox_rows(sessions, "digest")} == {"sent"}
    with sessions() as session:
        address = session.scalar(select(ContactAddress).where(ContactAddress.email == world.primary_email))
        assert address.bouncing is flagged_after and address.bounced_at is not None


@sqlite_only
def test_the_envelope_sender_names_the_outbox_row(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Walk done", T0)
    tasks.run_digests([world.thread_id], now=DUE)
    by_recipient = {row.recipient_email: row.id for row in outbox_rows(sessions, "digest")}
    for item in handler.received:
        assert item.mail_from == verp_sender(by_recipient[item.rcpt_tos[0]], "reply.test", settings.secret_key)
        assert parse_verp(item.mail_from, "reply.test", settings.secret_key) == by_recipient[item.rcpt_tos[0]]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_embedded_default_writes_a_maildir(database_url: str, tmp_path: Path, sessions) -> None:
    settings = make_settings(database_url, tmp_path)
    assert settings.uses_maildir
    configure_queue(settings)
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Walk done", T0)
    tasks.run_digests([world.thread_id], now=DUE)
    files = sorted((tmp_path / "outbox" / "new").iterdir())
    assert len(files) == 2
    email = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert email["Return-Path"].startswith("<bounce+") and email["Delivered-To"] in (world.primary_email, world.secondary_email)


def test_send_raw_submits_to_an_smtp_server() -> None:
    with running_sink(RecordingHandler()) as (handler, port):
        send_raw("127.0.0.1", port, "emma@parents.test", ["reply+abc@reply.test"], b"Subject: hi\r\n\r\nhello\r\n")
        (item,) = handler.wait_for(1)
    assert item.mail_from == "emma@parents.test" and item.rcpt_tos == ["reply+abc@reply.test"]


def _closed_port() -> int:
    from tests.outbound.smtp_sink import bound_socket

    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()
    return port


@sqlite_only
def test_a_pooled_connection_the_relay_dropped_is_reopened_and_nothing_is_lost(database_url: str, tmp_path: Path, sessions) -> None:
    """Batches reuse this process's idle relay connection; a relay restarted in between
    (the pooled socket is dead) costs a reconnect, never an email or a duplicate."""
    from tests.outbound.smtp_sink import BoundController, bound_socket

    first_handler = RecordingHandler()
    sock = bound_socket()
    port = sock.getsockname()[1]
    controller = BoundController(first_handler, sock)
    controller.start()
    configure_queue(make_settings(database_url, tmp_path, PAWPOST_OUTBOUND_URL=f"smtp://127.0.0.1:{port}"))
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Walk done", T0)
    tasks.run_digests([world.thread_id], now=DUE)
    controller.stop()  # the relay goes away under the pooled connection
    sock.close()
    assert len(first_handler.received) == 2

    post(sessions, world, ("staff", world.walker_id), "Dinner served", T0 + timedelta(minutes=10))
    with running_sink(port=port) as (handler, _):
        tasks.run_digests([world.thread_id], now=DUE + timedelta(minutes=10))
        delivered = sorted(r for item in handler.received for r in item.rcpt_tos)
    assert delivered == sorted([world.primary_email, world.secondary_email])
    assert {row.state for row in outbox_rows(sessions, "digest")} == {"sent"}


def test_every_email_sent_logs_one_line_without_address_or_body(settings, sessions, sink, caplog) -> None:
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Walk done", T0)
    with caplog.at_level("INFO", logger="outbound.outbox"):
        tasks.run_digests([world.thread_id], now=DUE)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("outbound sent ")]
    rows = outbox_rows(sessions, "digest")
    assert sorted(int(line.split("outbox=")[1].split()[0]) for line in lines) == sorted(row.id for row in rows)
    for line in lines:
        assert "to=contact" in line and " ms=" in line
        assert "Walk done" not in line and "@" not in line
