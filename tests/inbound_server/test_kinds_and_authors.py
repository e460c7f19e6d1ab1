"""Auto-replies, delivery reports, loops, who may post, cursors and attachments."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from outbound.ids import verp_sender
from outbound.sweep import find_due
from pawpost.settings import Settings
from tests.factories import MAIL_DOMAIN, make_appointment
from tests.inbound_server import queries
from tests.inbound_server.conftest import World
from tests.inbound_server.mail import reply_email, send
from threads.models import Contact, OutboundEmail, Staff, Thread, WebhookDelivery
from threads.posting import post_message
from threads.types import utcnow
from threads.webhooks import create_endpoint

_outbox_numbers = itertools.count(1)


def outbox_row(engine: Engine, world: World, *, up_to: int | None = None, recipient: str | None = None) -> OutboundEmail:
    """An email Pawpost sent to the primary contact, as the outbound side records it."""
    n = next(_outbox_numbers)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = OutboundEmail(
            business_id=world.business_id,
            thread_id=world.thread_id,
            kind="digest",
            dedupe_key=f"digest:test:{n}:{world.thread_id}",
            recipient_kind="contact",
            recipient_id=world.primary_id,
            recipient_email=recipient or world.primary_email,
            message_id_header=f"pawpost.{n}.cafe{n}@{MAIL_DOMAIN}",
            subject="New messages about Bella",
            up_to_message_id=up_to,
            state="sent",
        )
        session.add(row)
        return row


def staff_post(engine: Engine, world: World, body: str) -> int:
    with Session(engine) as session, session.begin():
        message = post_message(session, session.get(Thread, world.thread_id), session.get(Staff, world.senior_id), body)
        return message.id


def auto_reply(world: World, message_id: str) -> bytes:
    return reply_email(
        world.primary_email,
        world.reply_to,
        "I am away until Friday. I will answer when I am back.",
        quote=None,
        subject="Automatic reply: New messages about Bella",
        message_id=message_id,
        headers={"Auto-Submitted": "auto-replied"},
    )


def test_an_auto_reply_is_stored_and_noted_once_a_day_never_posted(smtp, world: World, engine: Engine) -> None:
    for n in range(3):
        assert send(*smtp, world.primary_email, world.reply_to, auto_reply(world, f"<ooo-{n}@parents.test>"))[0] == 250

    [note] = queries.messages(engine, world.thread_id)
    assert note.author_type == "system"
    assert note.body == "Auto-reply from Emma Johnson: I am away until Friday."
    assert [r.outcome for r in queries.inbound(engine)] == ["auto_reply"] * 3


def test_an_auto_reply_to_the_bounce_address_is_noted_in_the_outbox_thread(
    smtp, settings: Settings, world: World, engine: Engine
) -> None:
    outbox = outbox_row(engine, world)
    verp = verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key)

    assert send(*smtp, "", verp, auto_reply(world, "<ooo-verp@parents.test>"))[0] == 250

    [note] = queries.messages(engine, world.thread_id)
    assert note.author_type == "system" and note.body.startswith("Auto-reply from Emma Johnson")


def delivery_report(world: World, recipient: str, status: str, message_id: str) -> bytes:
    action = "failed" if status.startswith("5") else "delayed"
    return "\r\n".join(
        [
            "From: Mail Delivery System <MAILER-DAEMON@mx.parents.test>",
            f"To: bounce@{MAIL_DOMAIN}",
            "Subject: Undelivered Mail Returned to Sender",
            f"Message-ID: <{message_id}>",
            "MIME-Version: 1.0",
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
            "",
            "--B",
            "Content-Type: text/plain",
            "",
            "I'm sorry to have to inform you that your message could not be delivered.",
            "",
            "--B",
            "Content-Type: message/delivery-status",
            "",
            "Reporting-MTA: dns; mx.parents.test",
            "",
            f"Final-Recipient: rfc822; {recipient}",
            f"Action: {action}",
            f"Status: {status}",
            "Diagnostic-Code: smtp; 550 5.1.1 user unknown",
            "",
            "--B--",
            "",
        ]
    ).encode()


def test_a_permanent_bounce_on_the_verp_address_marks_the_address_bouncing(
    smtp, settings: Settings, world: World, engine: Engine
) -> None:
    outbox = outbox_row(engine, world)
    verp = verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key)

    assert send(*smtp, "", verp, delivery_report(world, world.primary_email, "5.1.1", "dsn-1@mx.parents.test"))[0] == 250

    address = queries.address(engine, world.primary_email)
    assert address.bouncing and address.bounced_at is not None and "5.1.1" in (address.bounce_reason or "")
    assert not queries.address(engine, world.secondary_email).bouncing
    [row] = queries.inbound(engine)
    assert row.outcome == "bounce" and row.thread_id == world.thread_id
    assert queries.messages(engine, world.thread_id) == []
    with Session(engine) as session:
        assert session.get(OutboundEmail, outbox.id).state == "bounced"


def test_a_transient_delay_report_marks_nothing(smtp, settings: Settings, world: World, engine: Engine) -> None:
    outbox = outbox_row(engine, world)
    verp = verp_sender(outbox.id, MAIL_DOMAIN, settings.secret_key)

    assert send(*smtp, "", verp, delivery_report(world, world.primary_email, "4.2.2", "dsn-2@mx.parents.test"))[0] == 250

    assert not queries.address(engine, world.primary_email).bouncing
    assert queries.inbound(engine)[0].outcome == "bounce"


def test_a_verp_address_of_no_outbox_row_is_refused(smtp, settings: Settings, world: World) -> None:
    verp = verp_sender(999999, MAIL_DOMAIN, settings.secret_key)

    assert send(*smtp, "", verp, delivery_report(world, world.primary_email, "5.1.1", "dsn-3@x"))[:1] == (550,)


def test_mail_from_pawpost_itself_is_dropped_as_a_loop(smtp, world: World, engine: Engine) -> None:
    ours = f"notifications@{MAIL_DOMAIN}"
    raw = reply_email(ours, world.reply_to, "New messages about Bella", quote=None)

    assert send(*smtp, ours, world.reply_to, raw)[0] == 250

    assert queries.messages(engine, world.thread_id) == []
    assert queries.inbound(engine)[0].outcome == "loop"


def test_senior_staff_may_always_post_by_email(smtp, world: World, engine: Engine) -> None:
    raw = reply_email(world.senior_email, world.reply_to, "See you at 3.")

    assert send(*smtp, world.senior_email, world.reply_to, raw)[0] == 250
    assert [m.staff_id for m in queries.messages(engine, world.thread_id)] == [world.senior_id]


def test_basic_staff_post_only_while_scheduled_with_the_family_today(smtp, world: World, engine: Engine) -> None:
    raw = reply_email(world.basic_email, world.reply_to, "On my way!", message_id="<basic-1@biz.test>")
    assert send(*smtp, world.basic_email, world.reply_to, raw)[0] == 250
    assert queries.messages(engine, world.thread_id) == []
    assert "not scheduled" in (queries.inbound(engine)[0].reason or "")

    with Session(engine) as session, session.begin():
        family = session.get(Thread, world.thread_id).family
        make_appointment(session, family, [session.get(Staff, world.basic_id)], start=utcnow() - timedelta(minutes=30))
    raw = reply_email(world.basic_email, world.reply_to, "On my way!", message_id="<basic-2@biz.test>")
    assert send(*smtp, world.basic_email, world.reply_to, raw)[0] == 250
    assert [m.staff_id for m in queries.messages(engine, world.thread_id)] == [world.basic_id]


def test_a_reply_moves_the_parents_cursor_to_what_the_answered_email_held(smtp, world: World, engine: Engine) -> None:
    seen = staff_post(engine, world, "Bella was great today.")
    outbox = outbox_row(engine, world, up_to=seen)
    unseen = staff_post(engine, world, "Also: we're out of treats.")  # written after the digest left
    raw = reply_email(world.primary_email, world.reply_to, in_reply_to=f"<{outbox.message_id_header}>")

    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250

    # The parent never saw the second staff message: it stays unread, so the next digest carries it.
    assert queries.read_cursor(engine, world.thread_id, "contact", world.primary_id) == seen
    assert unseen > seen


def test_a_reply_to_the_latest_email_reads_the_whole_thread(smtp, world: World, engine: Engine) -> None:
    seen = staff_post(engine, world, "Bella was great today.")
    outbox = outbox_row(engine, world, up_to=seen)
    raw = reply_email(world.primary_email, world.reply_to, in_reply_to=f"<{outbox.message_id_header}>")

    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250

    [_, reply] = queries.messages(engine, world.thread_id)
    assert queries.read_cursor(engine, world.thread_id, "contact", world.primary_id) == reply.id


def test_attachments_and_inline_images_are_kept(smtp, world: World, engine: Engine) -> None:
    message = EmailMessage()
    message["From"] = world.primary_email
    message["To"] = world.reply_to
    message["Subject"] = "Photos"
    message["Message-ID"] = "<photos-1@parents.test>"
    message.set_content("Look at her!")
    message.add_alternative('<p>Look at her!</p><img src="cid:bella-1@parents.test">', subtype="html")
    message.get_payload()[1].add_related(b"\x89PNG inline", "image", "png", cid="<bella-1@parents.test>")
    message.add_attachment(b"%PDF-1.4 vaccination", maintype="application", subtype="pdf", filename="vaccines.pdf")

    assert send(*smtp, world.primary_email, world.reply_to, message.as_bytes(policy=SMTP))[0] == 250

    [posted] = queries.messages(engine, world.thread_id)
    assert posted.body == "Look at her!"
    files = {(a.filename, a.content_type, a.inline, a.content_id, a.size) for a in posted.attachments}
    assert ("vaccines.pdf", "application/pdf", False, None, 20) in files
    assert any(inline and cid == "bella-1@parents.test" for _, _, inline, cid, _ in files)


def test_an_unverified_address_of_the_family_is_quarantined(smtp, world: World, engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        contact = session.get(Contact, world.primary_id)
        contact.addresses[0].verified = False

    assert send(*smtp, world.primary_email, world.reply_to, reply_email(world.primary_email, world.reply_to))[0] == 250
    assert queries.inbound(engine)[0].outcome == "quarantined"


def test_a_parents_email_alerts_exactly_the_staff_scheduled_today_once(smtp, settings: Settings, world: World, engine: Engine) -> None:
    """Rule 4 through the ingest: with nobody scheduled the alert is decided as "nobody"
    (the sweep never re-decides it, and staff scheduled later get no late alert); once the
    basic staff member is scheduled, the next email alerts them and only them."""
    raw = reply_email(world.primary_email, world.reply_to, "Is she eating?", message_id="<nobody-1@parents.test>")
    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250
    with Session(engine) as session, session.begin():
        family = session.get(Thread, world.thread_id).family
        make_appointment(session, family, [session.get(Staff, world.basic_id)], start=utcnow() - timedelta(minutes=30))
    raw = reply_email(world.primary_email, world.reply_to, "Is he eating?", message_id="<basic-on-1@parents.test>")
    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250

    first, second = queries.messages(engine, world.thread_id)
    with Session(engine) as session:
        alerts = session.scalars(select(OutboundEmail).where(OutboundEmail.kind == "alert")).all()
        assert [(a.recipient_email, a.up_to_message_id) for a in alerts] == [(world.basic_email, second.id)]
        assert find_due(session, settings, utcnow()).alert_message_ids == []  # both decided, neither waits for the sweep


def test_a_posted_email_is_a_message_created_event_only_for_a_business_with_an_active_endpoint(
    smtp, world: World, engine: Engine
) -> None:
    """The ingest learns whether the business has an active endpoint in its facts statement,
    and looks for `message.created` endpoints only then."""
    assert send(*smtp, world.primary_email, world.reply_to, reply_email(world.primary_email, world.reply_to, "First"))[0] == 250
    with Session(engine) as session:
        assert session.scalars(select(WebhookDelivery)).all() == []  # no endpoint, no event
    with Session(engine) as session, session.begin():
        endpoint, _ = create_endpoint(
            session, world.business_id, url="https://crm.example.test/in", events=["message.created"],
            development=False, secret_key="inbound-tests-secret-key-0123456789", now=utcnow(),
        )
        endpoint_id = endpoint.id

    assert send(*smtp, world.primary_email, world.reply_to, reply_email(world.primary_email, world.reply_to, "Second"))[0] == 250

    [_, second] = queries.messages(engine, world.thread_id)
    with Session(engine) as session:
        [delivery] = session.scalars(select(WebhookDelivery)).all()
        assert (delivery.endpoint_id, delivery.event_type) == (endpoint_id, "message.created")
        assert json.loads(delivery.payload)["data"]["message_id"] == second.id
