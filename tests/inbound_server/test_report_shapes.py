"""The report shapes of `tests/inbound/test_report_shapes.py`, over a real SMTP socket on
both databases: a refusal or a text bounce to a signed VERP address marks only that outbox
row's recipient (issue 11, point 7), a delay marks nobody, an auto-reply posts nothing.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from outbound.ids import verp_sender
from pawpost.settings import Settings
from tests.factories import MAIL_DOMAIN
from tests.inbound_server import queries
from tests.inbound_server.conftest import World
from tests.inbound_server.mail import send
from tests.inbound_server.test_kinds_and_authors import outbox_row
from threads.models import OutboundEmail

EML = Path(__file__).resolve().parent.parent / "data" / "eml"


def golden(name: str, named: str, as_named: str) -> bytes:
    """A golden email with the address it names replaced by one of this world's, with the
    CRLF line ends an MTA sends (smtplib sends bytes as they are)."""
    raw = (EML / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return raw.replace(named.encode(), as_named.encode())


def test_a_sieve_refusal_marks_the_refusing_recipient_only(smtp, settings: Settings, world: World, engine: Engine) -> None:
    outbox = outbox_row(engine, world)
    raw = golden("mdn_sieve_reject.eml", "priya.nair@parents.test", world.primary_email)

    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key), raw)[0] == 250

    address = queries.address(engine, world.primary_email)
    assert address.bouncing and "5.0.0" in (address.bounce_reason or "")
    assert not queries.address(engine, world.secondary_email).bouncing
    [row] = queries.inbound(engine)
    assert row.outcome == "bounce"
    assert queries.messages(engine, world.thread_id) == []
    with Session(engine) as session:
        assert session.get(OutboundEmail, outbox.id).state == "bounced"


def test_a_gateway_bounce_naming_another_contact_marks_only_the_rows_recipient(
    smtp, settings: Settings, world: World, engine: Engine
) -> None:
    """The report names the other parent; the signed address says whose email it was."""
    outbox = outbox_row(engine, world)
    raw = golden("bounce_appended_verdict.eml", "noor.haddad@kennelclub.test", world.secondary_email)

    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key), raw)[0] == 250

    assert queries.address(engine, world.primary_email).bouncing
    assert not queries.address(engine, world.secondary_email).bouncing
    [row] = queries.inbound(engine)
    assert row.outcome == "bounce"
    assert queries.messages(engine, world.thread_id) == []


def test_a_refusal_at_a_reply_address_marks_nobody(smtp, world: World, engine: Engine) -> None:
    raw = golden("mdn_sieve_reject.eml", "priya.nair@parents.test", world.primary_email)

    assert send(*smtp, "", world.reply_to, raw)[0] == 250

    assert not queries.address(engine, world.primary_email).bouncing
    [row] = queries.inbound(engine)
    assert row.outcome == "bounce" and "nobody marked" in (row.reason or "")
    assert queries.messages(engine, world.thread_id) == []


def test_a_delay_from_a_malformed_postmaster_address_marks_nobody(
    smtp, settings: Settings, world: World, engine: Engine
) -> None:
    outbox = outbox_row(engine, world)
    raw = golden("delay_malformed_from.eml", "marisol.vega@hosting.test", world.primary_email)

    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key), raw)[0] == 250

    assert not queries.address(engine, world.primary_email).bouncing
    [row] = queries.inbound(engine)
    assert row.outcome == "bounce" and "transient, nobody marked" in (row.reason or "")
    assert queries.messages(engine, world.thread_id) == []
    with Session(engine) as session:
        assert session.get(OutboundEmail, outbox.id).state == "sent"


def test_a_localized_outlook_auto_reply_posts_nothing(smtp, world: World, engine: Engine) -> None:
    """Sent from the parent's own address to the thread's reply address, with no RFC 3834
    header and a non-null envelope sender: only its subject says what it is."""
    raw = golden("auto_reply_localized.eml", "ilze.berzina@birojs.test", world.primary_email).replace(
        b"reply+t42@reply.pawpost.test", world.reply_to.encode()
    )

    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250

    [row] = queries.inbound(engine)
    assert row.outcome == "auto_reply"
    assert all(m.contact_id is None for m in queries.messages(engine, world.thread_id))
    assert not queries.address(engine, world.primary_email).bouncing
