"""A reply longer than a message holds (issue 11, point 13): the thread shows its first
MAX_VISIBLE_TEXT characters and a "Show the full email" link; the link serves the stored
email's whole text as plain text, to the staff who may open the thread and nobody else."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from inbound.ingest import process_stored_email
from tests.portal.conftest import World, sign_in_as
from threads.db import make_session_factory
from threads.limits import MAX_VISIBLE_TEXT
from threads.models import Contact, InboundEmail, Message, Thread

LONG_TEXT = "Start of the news.\n" + "Bella walked well today and chased every duck in the park.\n" * 3000 + "THE END of the news."


def _ingest(app: Flask, db: Session, thread: Thread, contact: Contact, text: str) -> int:
    """Store the email as the SMTP server does and let the real worker code post it."""
    address = db.scalar(select(Contact).where(Contact.id == contact.id)).email  # type: ignore[union-attr]
    raw = (
        f"From: {contact.name} <{address}>\r\nTo: reply+{thread.reply_token}@reply.test\r\n"
        f"Subject: Re: the walk\r\nMessage-ID: <long.{thread.id}@parents.test>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()
    row = InboundEmail(
        business_id=thread.business_id, thread_id=thread.id, envelope_from=address, envelope_to=f"reply+{thread.reply_token}@reply.test",
        message_id_header=f"long.{thread.id}@parents.test", size=len(raw), raw=raw, outcome="received",
    )
    db.add(row)
    db.commit()
    settings = app.extensions["pawpost"].settings
    outcome = process_stored_email(make_session_factory(db.get_bind()), settings, row.id)  # type: ignore[arg-type]
    assert outcome is not None and outcome.outcome == "posted" and outcome.message_id is not None
    return outcome.message_id


def test_a_truncated_reply_links_the_full_email_for_staff_allowed_on_the_thread(
    app: Flask, client: FlaskClient, world: World, db: Session
) -> None:
    mine = _ingest(app, db, world.thread, world.scheduled.contacts[0], LONG_TEXT)
    other = _ingest(app, db, world.other_thread, world.other.contacts[0], LONG_TEXT)
    message = db.get(Message, mine)
    assert message is not None and message.truncated and len(message.body) <= MAX_VISIBLE_TEXT
    assert message.body.startswith("Start of the news.") and "THE END" not in message.body
    db.rollback()

    sign_in_as(app, client, world.basic)  # scheduled with the Johnsons today only
    page = client.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    assert "Show the full email" in page and f'href="/messages/{mine}/email"' in page
    full = client.get(f"/messages/{mine}/email")
    assert full.status_code == 200 and full.mimetype == "text/plain"
    assert full.headers["X-Content-Type-Options"] == "nosniff"
    assert full.get_data(as_text=True).rstrip().endswith("THE END of the news.")
    assert client.get(f"/messages/{other}/email").status_code == 403  # not today's family

    sign_in_as(app, client, world.senior)
    assert client.get(f"/messages/{other}/email").status_code == 200
    sign_in_as(app, client, world.foreign_senior)
    assert client.get(f"/messages/{mine}/email").status_code == 404  # nothing crosses businesses


def test_a_message_that_fits_has_no_full_email_link(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    mine = _ingest(app, db, world.thread, world.scheduled.contacts[0], "Short and sweet.")
    db.rollback()
    sign_in_as(app, client, world.senior)
    page = client.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    assert "Short and sweet." in page and "Show the full email" not in page
    assert client.get(f"/messages/{mine}/email").status_code == 200  # reachable all the same
