"""Bounces without an RFC 3464 part, over a real SMTP socket (issue 11: every bounce classified).

A text-only permanent bounce to a signed VERP address marks that outbox row's recipient, as
a DSN does; a delay notice, or a vacation reply arriving at the same address (RFC 3834
sends it to the envelope sender), marks nobody and is never posted.
"""

from __future__ import annotations

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


def text_email(headers: list[str], body: list[str]) -> bytes:
    return ("\r\n".join([*headers, "", *body, ""])).encode()


def qmail_bounce(failed: str, message_id: str) -> bytes:
    """qmail's plain-text bounce; it carries no auto-reply header a DSN would have."""
    return text_email(
        [
            "From: MAILER-DAEMON@mail.parents.test",
            f"To: bounce@{MAIL_DOMAIN}",
            "Subject: failure notice",
            f"Message-ID: <{message_id}>",
        ],
        [
            "Hi. This is the qmail-send program at mail.parents.test.",
            "I'm afraid I wasn't able to deliver your message to the following addresses.",
            "This is a permanent error; I've given up. Sorry it didn't work out.",
            "",
            f"<{failed}>:",
            "Sorry, no mailbox here by that name. (#5.1.1)",
            "",
            "--- Below this line is a copy of the message.",
        ],
    )


def exim_delay(delayed: str, message_id: str) -> bytes:
    return text_email(
        [
            "From: Mail Delivery System <Mailer-Daemon@mx.parents.test>",
            f"To: bounce@{MAIL_DOMAIN}",
            "Subject: Warning: message 1wXyZa-0001Ab-Cd delayed 24 hours",
            "Auto-Submitted: auto-replied",
            f"Message-ID: <{message_id}>",
        ],
        [
            "This message was created automatically by mail delivery software.",
            "A message that you sent has not yet been delivered to one or more of its",
            "recipients after more than 24 hours on the queue on mx.parents.test.",
            "",
            "The address to which the message has not yet been delivered is:",
            "",
            f"  {delayed}",
            "    host mx2.parents.test [192.0.2.3]: 451 4.3.0 Mailbox temporarily unavailable",
            "",
            "No action is required on your part. Delivery attempts will continue for",
            "some time, and this warning may be repeated at intervals if the message",
            "remains undelivered. Eventually the mail delivery software will give up,",
            "and when that happens, the message will be returned to you.",
        ],
    )


def test_a_text_only_permanent_bounce_to_the_signed_address_marks_its_recipient(
    smtp, settings: Settings, world: World, engine: Engine
) -> None:
    outbox = outbox_row(engine, world)

    raw = qmail_bounce(world.primary_email, "qmail-1@mail.parents.test")
    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key), raw)[0] == 250

    address = queries.address(engine, world.primary_email)
    assert address.bouncing and "5.1.1" in (address.bounce_reason or "")
    assert not queries.address(engine, world.secondary_email).bouncing
    [row] = queries.inbound(engine)
    assert row.outcome == "bounce"
    assert queries.messages(engine, world.thread_id) == []
    with Session(engine) as session:
        assert session.get(OutboundEmail, outbox.id).state == "bounced"


def test_a_text_bounce_naming_nobody_still_marks_the_rows_recipient(
    smtp, settings: Settings, world: World, engine: Engine
) -> None:
    """The VERP address says which email failed; the report only has to say it is final."""
    outbox = outbox_row(engine, world)
    raw = text_email(
        ["From: postmaster@old-isp.test", f"To: bounce@{MAIL_DOMAIN}", "Subject: Returned mail", "Message-ID: <r-1@isp>"],
        ["Your message could not be delivered: the mailbox has been closed.", "This is a permanent error."],
    )

    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key), raw)[0] == 250

    assert queries.address(engine, world.primary_email).bouncing
    [row] = queries.inbound(engine)
    assert (row.outcome, "recipient not named 5.0.0" in (row.reason or "")) == ("bounce", True)


def test_a_delay_notice_marks_nobody(smtp, settings: Settings, world: World, engine: Engine) -> None:
    outbox = outbox_row(engine, world)

    raw = exim_delay(world.primary_email, "delay-1@mx.parents.test")
    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key), raw)[0] == 250

    assert not queries.address(engine, world.primary_email).bouncing
    [row] = queries.inbound(engine)
    assert row.outcome == "bounce" and "transient, nobody marked" in (row.reason or "")
    assert queries.messages(engine, world.thread_id) == []
    with Session(engine) as session:
        assert session.get(OutboundEmail, outbox.id).state == "sent"


def test_a_vacation_reply_to_the_signed_address_marks_nobody(smtp, settings: Settings, world: World, engine: Engine) -> None:
    outbox = outbox_row(engine, world)
    raw = text_email(
        [
            f"From: Emma <{world.primary_email}>",
            f"To: bounce@{MAIL_DOMAIN}",
            "Subject: Out of office: New messages about Bella",
            "Auto-Submitted: auto-replied (vacation)",
            "Message-ID: <oof-1@parents.test>",
        ],
        ["I'm away until Monday; deliveries to the house will be delayed. I will try to reply then."],
    )

    assert send(*smtp, "", verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key), raw)[0] == 250

    assert not queries.address(engine, world.primary_email).bouncing
    [row] = queries.inbound(engine)
    assert row.outcome == "auto_reply"
    assert all(m.contact_id is None for m in queries.messages(engine, world.thread_id))


def test_a_null_reverse_path_report_without_report_headers_is_not_posted(
    smtp, settings: Settings, world: World, engine: Engine
) -> None:
    """The stored envelope sender is the signal: `MAIL FROM:<>` is never a person's reply,
    even when the From is a family's address and nothing else looks automatic."""
    raw = text_email(
        [f"From: {world.primary_email}", f"To: {world.reply_to}", "Subject: Re: walk", "Message-ID: <null-1@parents.test>"],
        ["Sounds good."],
    )

    assert send(*smtp, "", world.reply_to, raw)[0] == 250

    [row] = queries.inbound(engine)
    assert row.outcome == "auto_reply"
    assert all(m.contact_id is None for m in queries.messages(engine, world.thread_id))
