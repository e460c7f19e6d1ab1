"""Issue 11, point 7: the thread page says when and why an address was marked, and stops
saying it once the flag clears."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from inbound.bounces import record_bounce
from tests.portal.conftest import World, sign_in_as
from threads.bounces import clear_bouncing
from threads.models import Contact, OutboundEmail
from threads.types import utcnow


def test_the_thread_page_shows_when_and_why_an_address_bounces(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    liam = db.get(Contact, world.scheduled.contacts[1].id)
    outbox = OutboundEmail(
        business_id=world.business.id, thread_id=world.thread.id, kind="digest", dedupe_key="bounce-page",
        recipient_kind="contact", recipient_id=liam.id, recipient_email=liam.email, message_id_header="bp@reply.test",
        subject="s", state="sent",
    )
    db.add(outbox)
    db.flush()
    marked_at = utcnow() - timedelta(minutes=5)
    record_bounce(db, outbox, [(liam.email, "5.1.1", True)], marked_at)
    db.commit()
    sign_in_as(app, client, world.senior)

    page = client.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    card = page[page.index(f'data-contact-id="{liam.id}"') :][:1500]
    assert "Bouncing since <time" in card and "5 min ago" in card
    assert f"5.1.1 reported {marked_at:%Y-%m-%d %H:%M} UTC" in card.split("</li>")[0]

    clear_bouncing(db, world.business.id, liam.email)
    db.commit()
    page = client.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    assert "Bouncing" not in page[page.index(f'data-contact-id="{liam.id}"') :][:1500].split("</li>")[0]
