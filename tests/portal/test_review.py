"""Quarantine review and the development mailbox, with the real inbound code and SMTP server."""

from __future__ import annotations

import email.utils
import mailbox
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from inbound.server import running_smtp_server
from outbound.queue import huey
from pawpost.settings import Settings
from portal import create_app
from tests.portal.conftest import World, csrf_token, portal_settings_for, sign_in_as
from threads.models import ContactAddress, InboundEmail, Message, Thread


def test_quarantine_shows_visible_text_and_releases_as_a_contact(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    sign_in_as(app, client, world.senior)
    page = client.get("/quarantine").get_data(as_text=True)
    assert "stranger@else.test" in page and "About the walk" in page and "Is Bella OK?" in page
    assert "x@else.test" not in page  # the other business's held email
    emma = world.scheduled.contacts[0]
    response = client.post(
        f"/quarantine/{world.held.id}/release",
        data={"csrf_token": csrf_token(client), "contact_id": str(emma.id), "add_alias": "1"},
    )
    assert response.status_code == 302 and response.location.startswith(f"/threads/{world.thread.id}#m")
    message = db.scalar(select(Message).where(Message.thread_id == world.thread.id).order_by(Message.id.desc()))
    assert message is not None and message.contact_id == emma.id and message.body == "Is Bella OK?"
    assert db.get(InboundEmail, world.held.id).outcome == "released"  # type: ignore[union-attr]
    aliases = set(db.scalars(select(ContactAddress.email).where(ContactAddress.contact_id == emma.id)))
    assert "stranger@else.test" in aliases
    message_id = message.id
    db.rollback()
    assert any(t.name.endswith("process_posted_message") and t.args == (message_id,) for t in huey.pending())


def test_quarantine_discards_and_refuses_a_contact_of_another_family(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    sign_in_as(app, client, world.admin)
    wrong = client.post(
        f"/quarantine/{world.held.id}/release",
        data={"csrf_token": csrf_token(client), "contact_id": str(world.other.contacts[0].id)},
        follow_redirects=True,
    )
    assert "Choose one of this family" in wrong.get_data(as_text=True)
    client.post(f"/quarantine/{world.held2.id}/discard", data={"csrf_token": csrf_token(client)})
    assert db.get(InboundEmail, world.held.id).outcome == "quarantined"  # type: ignore[union-attr]
    assert db.get(InboundEmail, world.held2.id).outcome == "discarded"  # type: ignore[union-attr]
    db.rollback()
    assert "Buy now" not in client.get("/quarantine").get_data(as_text=True)


@pytest.fixture
def smtp_settings(database_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings whose `smtp_listen` is a real Pawpost SMTP server on an ephemeral port."""
    base = portal_settings_for(database_url, tmp_path, PAWPOST_SMTP_LISTEN="127.0.0.1:0")
    with running_smtp_server(base) as (host, port):
        yield base.replace(smtp_listen=(host, port))


def _deliver_to_maildir(settings: Settings, thread: Thread, to: str, text: str) -> str:
    """An email shaped like outbound's digest, dropped where the Maildir transport drops it."""
    message = EmailMessage()
    message["From"] = f"Happy Tails <{settings.notifications_address}>"
    message["To"] = to
    message["Reply-To"] = f"reply+{thread.reply_token}@{settings.reply_domain}"
    message["Subject"] = "New messages from Happy Tails"
    message["Date"] = email.utils.formatdate()
    message["Message-ID"] = email.utils.make_msgid(domain=settings.mail_domain)
    message["References"] = f"<{thread.root_message_id}>"
    message.set_content(text)
    assert settings.maildir_path is not None
    return mailbox.Maildir(settings.maildir_path, create=True).add(message.as_bytes())


def test_dev_mailbox_shows_sent_mail_and_replies_through_real_smtp(smtp_settings: Settings, world: World, db: Session) -> None:
    app = create_app(smtp_settings)
    client = app.test_client()
    emma = world.scheduled.contacts[0]
    key = _deliver_to_maildir(smtp_settings, world.thread, emma.email, "Sam: Bella <b>loved</b> the park")  # type: ignore[arg-type]
    _deliver_to_maildir(smtp_settings, world.foreign_thread, "bea@b.test", "Not yours")
    sign_in_as(app, client, world.senior)
    listing = client.get("/dev/mailbox").get_data(as_text=True)
    assert f'href="/dev/mailbox/{key}"' in listing and "bea@b.test" not in listing
    shown = client.get(f"/dev/mailbox/{key}").get_data(as_text=True)
    assert "Bella &lt;b&gt;loved&lt;/b&gt; the park" in shown and "Reply as this person" in shown
    response = client.post(
        f"/dev/mailbox/{key}/reply",
        data={"csrf_token": csrf_token(client), "from": emma.email, "body": "Thanks! See you at 3."},
    )
    assert response.status_code == 302
    posted = db.scalar(select(Message).where(Message.thread_id == world.thread.id).order_by(Message.id.desc()))
    assert posted is not None and posted.contact_id == emma.id and posted.source == "email"
    assert posted.body == "Thanks! See you at 3."
    assert "Bella <b>loved</b> the park" in (posted.trimmed or "")
    db.rollback()
    app.extensions["pawpost"].engine.dispose()


def test_dev_mailbox_is_absent_when_mail_goes_to_a_relay(database_url: str, tmp_path: Path, world: World) -> None:
    app = create_app(portal_settings_for(database_url, tmp_path, PAWPOST_OUTBOUND_URL="smtp://relay.example:25"))
    client = app.test_client()
    sign_in_as(app, client, world.senior)
    assert client.get("/dev/mailbox").status_code == 404
    assert "Dev mailbox" not in client.get("/messages").get_data(as_text=True)
    app.extensions["pawpost"].engine.dispose()
