"""Internal notes (rule 8): staff-only messages that never reach a parent's email, digest or unread count."""

from __future__ import annotations

import email
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from outbound import notify, sweep
from pawpost.settings import Settings
from tests.portal.conftest import World, csrf_token, sign_in_as
from threads.errors import AccessDenied
from threads.models import Message, OutboundEmail, Thread
from threads.posting import post_message, visible_to_parents
from threads.reading import pending_notifications, unread_messages
from threads.types import utcnow

NOTE = "Bella bit Jordan's sleeve today, keep an eye @Sky"


def _post(client: FlaskClient, thread_id: int, body: str, **extra: str) -> int:
    response = client.post(
        f"/threads/{thread_id}/messages",
        data={"csrf_token": csrf_token(client), "body": body, **extra},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return int(response.get_json()["id"])


def _bodies(db: Session, kind: str) -> dict[str, str]:
    """Recipient → the whole decoded text of every part of their outbox email of this kind."""
    found = {}
    for row in db.scalars(select(OutboundEmail).where(OutboundEmail.kind == kind)):
        parsed = email.message_from_bytes(row.raw or b"")
        parts = [p.get_payload(decode=True).decode() for p in parsed.walk() if p.get_content_maintype() == "text"]
        found[row.recipient_email] = "\n".join(parts) + "\n" + str(parsed)
    return found


def test_a_note_never_reaches_a_digest_and_mentions_email_the_teammate(
    app: Flask, client: FlaskClient, world: World, db: Session, portal_settings: Settings
) -> None:
    sign_in_as(app, client, world.senior)
    note_id = _post(client, world.thread.id, NOTE, internal="1")
    reply_id = _post(client, world.thread.id, "Bella had a lovely walk")
    assert db.get(Message, note_id).internal and not db.get(Message, reply_id).internal

    # The mention: one email to Sky (not to the author), the note and a link to it, and no
    # Reply-To / thread headers through which an email answer could reach the family.
    mentions = _bodies(db, "alert")
    assert list(mentions) == ["sky@a.test"]
    mail = email.message_from_bytes(db.scalar(select(OutboundEmail.raw).where(OutboundEmail.kind == "alert")) or b"")
    assert mail["Reply-To"] is None and mail["In-Reply-To"] is None and "mentioned you" in mail["Subject"]
    assert "keep an eye" in mentions["sky@a.test"] and f"/threads/{world.thread.id}#m{note_id}" in mentions["sky@a.test"]

    db.rollback()
    later = utcnow() + timedelta(hours=1)
    assert sweep.due_digest_threads(db, portal_settings, later) == [world.thread.id]
    decision = notify.plan_digests(db, portal_settings, world.thread.id, later)
    db.commit()
    digests = _bodies(db, "digest")
    assert len(decision.outbox_ids) == 2 and len(digests) == 2
    for body in digests.values():
        assert "lovely walk" in body
        assert "sleeve" not in body and "keep an eye" not in body


def test_a_note_alone_owes_parents_nothing_and_is_unread_for_staff(
    app: Flask, client: FlaskClient, world: World, db: Session, portal_settings: Settings
) -> None:
    # Both parents are emailed what is owed so far; then only a note follows.
    notify.plan_digests(db, portal_settings, world.thread.id, utcnow() + timedelta(hours=1))
    db.commit()
    sign_in_as(app, client, world.senior)
    note_id = _post(client, world.thread.id, "Owner is behind on payment — staff only", internal="1")
    db.expire_all()
    thread = db.get(Thread, world.thread.id)
    contact = thread.family.contacts[1]
    later = utcnow() + timedelta(hours=1)
    assert note_id not in [m.id for m in unread_messages(db, thread, contact.person)]
    assert pending_notifications(db, thread, contact) == []
    assert world.thread.id not in sweep.due_digest_threads(db, portal_settings, later)
    assert notify.plan_digests(db, portal_settings, thread.id, later).outbox_ids == []
    assert db.scalar(visible_to_parents(select(Message.id).where(Message.id == note_id))) is None
    db.commit()
    assert "behind on payment" not in "".join(_bodies(db, "digest").values())
    db.rollback()  # SQLite: an open read would hold the lock the sign-in below writes under

    # Staff: the note is unread for the other senior, drawn as a note, without parent receipts.
    other = app.test_client()
    sign_in_as(app, other, world.senior2)
    assert world.thread.id in other.get(f"/api/unread?ids={world.thread.id}").get_json()["unread"]
    page = other.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    assert f'msg-internal" id="m{note_id}"' in page and "Internal note</span>" in page


def test_only_staff_write_notes(db: Session, world: World) -> None:
    thread = db.get(Thread, world.thread.id)
    with pytest.raises(AccessDenied):
        post_message(db, thread, thread.family.contacts[0], "hi", internal=True)
