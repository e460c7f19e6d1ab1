"""Issue 11, point 7: only a report to a signed VERP address marks, only its recipient, and
the flag clears (mail from the address, the operator's `pawpost contacts unbounce`)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from outbound.ids import verp_mac, verp_sender
from pawpost.cli import main
from pawpost.settings import Settings
from tests.factories import MAIL_DOMAIN, make_family
from tests.inbound_server import queries
from tests.inbound_server.conftest import World
from tests.inbound_server.mail import reply_email, send
from tests.inbound_server.test_kinds_and_authors import delivery_report, outbox_row
from threads.models import Business, OutboundEmail


def report_naming(*recipients: tuple[str, str], message_id: str) -> bytes:
    """A DSN listing several failed recipients (what a forger writes to silence families)."""
    raw = delivery_report_parts(recipients)
    return raw.replace(b"Message-ID: <x>", f"Message-ID: <{message_id}>".encode())


def delivery_report_parts(recipients: tuple[tuple[str, str], ...]) -> bytes:
    groups: list[str] = []
    for address, status in recipients:
        groups += ["", f"Final-Recipient: rfc822; {address}", "Action: failed", f"Status: {status}"]
    lines = [
        "From: Mail Delivery System <MAILER-DAEMON@mx.parents.test>",
        f"To: bounce@{MAIL_DOMAIN}",
        "Subject: Undelivered Mail Returned to Sender",
        "Message-ID: <x>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
        "",
        "--B",
        "Content-Type: text/plain",
        "",
        "Your message could not be delivered.",
        "",
        "--B",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.parents.test",
        *groups,
        "",
        "--B--",
        "",
    ]
    return "\r\n".join(lines).encode()


def test_a_verp_address_without_its_mac_is_refused_at_rcpt(smtp, settings: Settings, world: World, engine: Engine) -> None:
    outbox = outbox_row(engine, world)
    raw = delivery_report(world, world.primary_email, "5.1.1", "forged-1@attacker.example")
    mac = verp_mac(outbox.id, settings.secret_key)
    forged = [
        f"bounce+{outbox.id}@{MAIL_DOMAIN}",  # the sequential form of today's main
        f"bounce+{outbox.id}.{'a' * len(mac)}@{MAIL_DOMAIN}",  # a guessed mac
        f"bounce+{outbox.id + 1}.{mac}@{MAIL_DOMAIN}",  # a real mac moved to another row
        f"bounce+{outbox.id}.{mac[:-1]}@{MAIL_DOMAIN}",  # truncated
        f"bounce+{outbox.id}.{verp_mac(outbox.id, 'another key')}@{MAIL_DOMAIN}",  # signed under another key
    ]
    for address in forged:
        code, text = send(*smtp, "", address, raw)
        assert (code, text[:5]) == (550, "5.1.1"), address

    assert queries.inbound(engine) == []
    assert not queries.address(engine, world.primary_email).bouncing
    # The signed address is accepted, in any case (local parts lose their case on the way).
    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key).upper(), raw)[0] == 250
    assert queries.address(engine, world.primary_email).bouncing


def test_a_signed_bounce_marks_only_the_recipient_of_its_outbox_row(smtp, settings: Settings, world: World, engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        other = make_family(session, session.get(Business, world.business_id), contacts=("Noah Smith",))
        other_email = other.contacts[0].email
    outbox = outbox_row(engine, world)
    raw = report_naming(
        (world.secondary_email, "5.1.1"), (other_email, "5.1.1"), (world.primary_email, "5.1.1"), message_id="dsn-many@mx"
    )

    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key), raw)[0] == 250

    assert queries.address(engine, world.primary_email).bouncing
    assert not queries.address(engine, world.secondary_email).bouncing
    assert not queries.address(engine, other_email).bouncing


def test_a_report_naming_only_others_still_marks_only_the_rows_recipient(smtp, settings: Settings, world: World, engine: Engine) -> None:
    """A parent sees the Return-Path of their own digest: a report they forge to it names
    the other parent, yet can mark only themselves."""
    outbox = outbox_row(engine, world, recipient=world.secondary_email)
    raw = report_naming((world.primary_email, "5.1.1"), message_id="dsn-other@mx")

    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key), raw)[0] == 250

    assert not queries.address(engine, world.primary_email).bouncing


def test_a_delivery_report_to_a_reply_address_marks_nobody(smtp, settings: Settings, world: World, engine: Engine) -> None:
    outbox = outbox_row(engine, world)
    raw = delivery_report(world, world.primary_email, "5.1.1", "dsn-reply@mx.parents.test").replace(
        b"Reporting-MTA", f"Original-Envelope-Id: x\r\nX-Original-Message-ID: <{outbox.message_id_header}>\r\nReporting-MTA".encode()
    )

    assert send(*smtp, "", world.reply_to, raw)[0] == 250

    assert not queries.address(engine, world.primary_email).bouncing
    [row] = queries.inbound(engine)
    assert row.outcome == "bounce" and "nobody marked" in (row.reason or "")
    assert queries.messages(engine, world.thread_id) == []
    with Session(engine) as session:
        assert session.get(OutboundEmail, outbox.id).state == "sent"


def test_a_transient_failure_at_the_signed_address_marks_nothing(smtp, settings: Settings, world: World, engine: Engine) -> None:
    outbox = outbox_row(engine, world)
    raw = report_naming((world.primary_email, "4.7.1"), message_id="dsn-4xx@mx")

    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key), raw)[0] == 250

    assert not queries.address(engine, world.primary_email).bouncing
    with Session(engine) as session:
        assert session.get(OutboundEmail, outbox.id).state == "sent"


def test_a_transient_entry_for_the_rows_recipient_wins_over_others_permanent_ones(
    smtp, settings: Settings, world: World, engine: Engine
) -> None:
    outbox = outbox_row(engine, world)
    raw = report_naming((world.primary_email, "4.2.2"), (world.secondary_email, "5.1.1"), message_id="dsn-mixed@mx")

    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key), raw)[0] == 250

    assert not queries.address(engine, world.primary_email).bouncing
    assert not queries.address(engine, world.secondary_email).bouncing


def test_mail_from_a_bouncing_address_clears_its_flag(smtp, settings: Settings, world: World, engine: Engine) -> None:
    outbox = outbox_row(engine, world)
    bounce = delivery_report(world, world.primary_email, "5.2.2", "dsn-full@mx.parents.test")
    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key), bounce)[0] == 250
    marked = queries.address(engine, world.primary_email)
    assert marked.bouncing and "5.2.2" in (marked.bounce_reason or "")

    reply = reply_email(world.primary_email, world.reply_to, "Mailbox cleaned up, sorry!")
    assert send(*smtp, world.primary_email, world.reply_to, reply)[0] == 250

    assert [m.contact_id for m in queries.messages(engine, world.thread_id)] == [world.primary_id]
    assert not queries.address(engine, world.primary_email).bouncing


def test_the_operator_clears_a_flag_with_contacts_unbounce(
    smtp, settings: Settings, world: World, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    outbox = outbox_row(engine, world)
    bounce = delivery_report(world, world.primary_email, "5.1.1", "dsn-cli@mx.parents.test")
    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key), bounce)[0] == 250
    with Session(engine) as session:
        slug = session.get(Business, world.business_id).slug
    env = {"PAWPOST_DATABASE_URL": database_url, "PAWPOST_DATA_DIR": str(tmp_path)}

    wrong = CliRunner().invoke(main, ["contacts", "unbounce", world.primary_email, "--business", "nope"], env=env)
    assert wrong.exit_code == 1 and "no business 'nope'" in wrong.output
    result = CliRunner().invoke(
        main, ["contacts", "unbounce", world.primary_email.upper(), "--business", slug, "--json"], env=env
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"business": slug, "address": world.primary_email, "cleared": 1}]
    assert not queries.address(engine, world.primary_email).bouncing
    again = CliRunner().invoke(main, ["contacts", "unbounce", world.primary_email], env=env)
    assert again.exit_code == 1 and "not marked bouncing" in again.output
