"""Issue 14, point 1: the parent link in every digest opens the family's conversation on the web.

The link comes from a real digest in the outbox; it opens only that family's thread, shows
photos, lets the parent reply (as themselves, source `web`, alerting scheduled staff), moves
their read cursor, and stops working after 30 days without use, after a reply-address
rotation and after the contact's removal. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import timedelta
from io import BytesIO

from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from outbound import digests, notify
from outbound.links import parent_token
from tests.portal.auth_helpers import outbox, text_of
from tests.portal.conftest import PNG, SECRET, Clock, World, sign_in_as
from threads.addresses import rotate_reply_token
from threads.models import Contact, Message, OutboundEmail, ParentLink, ReadCursor, Staff, Thread
from threads.parent_links import revoke_parent_links
from threads.posting import NewAttachment, post_message

GONE = "A new link comes with the next email"


def _staff_post(db: Session, world: World, text: str, at, photo: bool = False) -> Message:  # type: ignore[no-untyped-def]
    thread, senior = db.get(Thread, world.thread.id), db.get(Staff, world.senior.id)
    assert thread is not None and senior is not None
    files = [NewAttachment("park.png", "image/png", PNG)] if photo else []
    message = post_message(db, thread, senior, text, files, source="portal", now=at)
    db.add(Message(thread_id=thread.id, author_type="system", body="Internal: Bella bit Sam", source="system", created_at=at))
    db.commit()
    return message


def _send_digests(app: Flask, db: Session, world: World, clock: Clock) -> list[OutboundEmail]:
    """Rule 3 at the clock's time; the digests written, whole and detached."""
    clock.at += timedelta(minutes=10)
    before = {row.id for row in outbox(db, "digest")}
    digests.plan_digest_batch(db, app.extensions["pawpost"].settings, [world.thread.id], clock.at)
    db.commit()
    return [row for row in outbox(db, "digest") if row.id not in before]


def _link(row: OutboundEmail) -> str:
    found = re.search(r"View the whole conversation: https://portal\.test(/p/[A-Za-z0-9_.-]+)", text_of(row))
    assert found, text_of(row)
    return found.group(1)


def _digest_link(app: Flask, db: Session, world: World, clock: Clock, contact_name: str = "Liam Johnson") -> str:
    _staff_post(db, world, "Bella at the park today", clock.at, photo=True)
    sent = _send_digests(app, db, world, clock)
    row = next(r for r in sent if db.get(Contact, r.recipient_id).name == contact_name)  # type: ignore[union-attr]
    db.rollback()
    return _link(row)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def test_the_digest_link_opens_the_family_conversation_and_reads_it(timed_app: Flask, world: World, db: Session, clock: Clock) -> None:
    client = timed_app.test_client()
    link = _digest_link(timed_app, db, world, clock)
    page = client.get(link)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "Bella ate well" in html and "Emma Johnson" in html  # the co-parent's words, by name
    assert "Bella at the park today" in html and "Sam Senior" in html
    assert "Internal: Bella bit Sam" not in html  # no system/staff-only message
    assert "Luna limps" not in html and "Hi B" not in html  # never another family
    photos = re.findall(r'<img src="(/p/[^"]+/files/\d+)"', html)
    assert len(photos) == 2
    assert client.get(photos[-1]).data == PNG
    # Another family's attachment through this family's link: nothing.
    assert client.get(f"{link}/files/{world.other_image.id}").status_code == 404

    liam = db.scalar(select(Contact).where(Contact.name == "Liam Johnson"))
    assert liam is not None
    newest = db.scalar(select(Message.id).where(Message.thread_id == world.thread.id, Message.author_type == "staff").order_by(Message.id.desc()))
    cursor = db.scalar(select(ReadCursor.message_id).where(ReadCursor.person_kind == "contact", ReadCursor.person_id == liam.id))
    assert cursor == newest
    db.rollback()

    # What Liam saw on the page is not emailed to him later; Emma still gets her digest.
    _staff_post(db, world, "Bella is asleep now", clock.at)
    client.get(link)
    sent = _send_digests(timed_app, db, world, clock)
    assert [db.get(Contact, row.recipient_id).name for row in sent] == ["Emma Johnson"]  # type: ignore[union-attr]


def test_a_reply_from_the_page_posts_as_the_parent_and_alerts_scheduled_staff(
    timed_app: Flask, world: World, db: Session, clock: Clock
) -> None:
    client = timed_app.test_client()
    link = _digest_link(timed_app, db, world, clock)
    token = _csrf(client.get(link).get_data(as_text=True))
    assert client.post(link, data={"body": "Thanks! Here she is at home"}).status_code == 400  # no CSRF token
    answer = client.post(
        link,
        data={"csrf_token": token, "body": "Thanks! Here she is at home", "files": (BytesIO(PNG), "home.png", "image/png")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 302
    message = db.scalar(select(Message).where(Message.body == "Thanks! Here she is at home"))
    assert message is not None and message.source == "web" and message.contact is not None
    assert message.contact.name == "Liam Johnson" and [a.filename for a in message.attachments] == ["home.png"]
    alerts = notify.plan_alerts(db, timed_app.extensions["pawpost"].settings, message.id, clock.at)
    db.commit()
    assert [row.recipient_email for row in outbox(db, "alert") if row.id in alerts] == ["bo@a.test"]

    staff_client = timed_app.test_client()
    sign_in_as(timed_app, staff_client, world.senior)
    staff_page = staff_client.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    assert "Thanks! Here she is at home" in staff_page and "home.png" in staff_page


def test_links_expire_thirty_days_after_their_last_use(timed_app: Flask, world: World, db: Session, clock: Clock) -> None:
    client = timed_app.test_client()
    link = _digest_link(timed_app, db, world, clock)
    clock.at += timedelta(days=25)
    assert client.get(link).status_code == 200  # used: alive for 30 more days
    clock.at += timedelta(days=25)
    assert client.get(link).status_code == 200
    clock.at += timedelta(days=30, minutes=1)
    gone = client.get(link)
    assert gone.status_code == 404 and GONE in gone.get_data(as_text=True)
    assert gone.headers["Referrer-Policy"] == "no-referrer"
    # The next digest brings a link that works.
    fresh = _digest_link(timed_app, db, world, clock)
    assert fresh != link and client.get(fresh).status_code == 200


def _writes(app: Flask) -> list[str]:
    """Every INSERT, UPDATE and DELETE the app sends from now on, by its first words (but the
    once-a-minute delete of day-old rate-limit hits)."""
    seen: list[str] = []

    def noted(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
        words = statement.split()
        if words[0] in ("INSERT", "UPDATE", "DELETE") and words[:3] != ["DELETE", "FROM", "rate_limit_hits"]:
            seen.append(" ".join(words[:3]))

    event.listen(app.extensions["pawpost"].engine, "before_cursor_execute", noted)
    return seen


def test_a_view_writes_the_use_hourly_and_the_cursor_only_when_something_is_new(
    timed_app: Flask, world: World, db: Session, clock: Clock
) -> None:
    client = timed_app.test_client()
    link = _digest_link(timed_app, db, world, clock)
    liam = db.scalar(select(Contact.id).where(Contact.name == "Liam Johnson"))
    db.rollback()

    def state() -> tuple[object, object]:
        used = db.scalar(select(ParentLink.last_used_at).where(ParentLink.contact_id == liam))
        read = db.scalar(select(ReadCursor.message_id).where(ReadCursor.person_kind == "contact", ReadCursor.person_id == liam))
        db.rollback()
        return used, read

    writes = _writes(timed_app)
    assert client.get(link).status_code == 200
    first_use, first_read = state()
    assert first_use == clock.at and first_read is not None
    assert any(w.startswith("UPDATE parent_links") for w in writes) and any(w.startswith("INSERT INTO read_cursors") for w in writes)

    # Again, 20 minutes later, nothing new: only the view's rate-limit hit is written.
    clock.at += timedelta(minutes=20)
    writes.clear()
    assert client.get(link).status_code == 200
    assert writes == ["INSERT INTO rate_limit_hits"]
    assert state() == (first_use, first_read)

    # A new message moves the cursor; an hour after the noted use, the use is noted again.
    newer = _staff_post(db, world, "Bella is asleep now", clock.at)
    clock.at += timedelta(minutes=41)
    writes.clear()
    assert client.get(link).status_code == 200
    assert state() == (clock.at, newer.id)
    assert sorted(writes) == ["INSERT INTO rate_limit_hits", "INSERT INTO read_cursors", "UPDATE parent_links SET"]


def test_rotation_removal_and_revocation_take_links_back(timed_app: Flask, world: World, db: Session, clock: Clock) -> None:
    client = timed_app.test_client()
    link = _digest_link(timed_app, db, world, clock)
    emma_link = _digest_link(timed_app, db, world, clock, "Emma Johnson")
    assert client.get(link).status_code == 200
    thread = db.get(Thread, world.thread.id)
    assert thread is not None
    rotate_reply_token(db, thread)
    db.commit()
    assert GONE in client.get(link).get_data(as_text=True)
    assert client.get(emma_link).status_code == 404

    link = _digest_link(timed_app, db, world, clock)
    assert client.get(link).status_code == 200
    liam = db.scalar(select(Contact).where(Contact.name == "Liam Johnson"))
    assert liam is not None
    revoke_parent_links(db, liam.id, clock.at)
    db.commit()
    assert client.get(link).status_code == 404

    link = _digest_link(timed_app, db, world, clock)
    assert client.get(link).status_code == 200
    db.delete(db.get(Contact, liam.id))
    db.commit()
    assert client.get(link).status_code == 404


def test_forged_and_foreign_tokens_open_nothing(timed_app: Flask, world: World, db: Session, clock: Clock) -> None:
    client = timed_app.test_client()
    link = _digest_link(timed_app, db, world, clock)
    token = link.rsplit("/", 1)[1]
    liam = db.scalar(select(Contact).where(Contact.name == "Liam Johnson"))
    foreign = db.scalar(select(Contact).where(Contact.name == "Bea Bellamy"))
    assert liam is not None and foreign is not None
    forged = [
        parent_token("not-our-key", liam.id, "0" * 32),
        parent_token(SECRET, liam.id, "0" * 32),  # our key, but not the contact's link key
        parent_token(SECRET, foreign.id, "0" * 32),
        URLSafeTimedSerializer(SECRET, salt="pawpost.attachment-link").dumps([liam.id, "x"]),
        token[:-2] + "AA",
        "x" * 400,
    ]
    db.rollback()
    for value in forged:
        answer = client.get(f"/p/{value}")
        assert answer.status_code == 404 and GONE in answer.get_data(as_text=True), value


def test_a_parent_chooses_how_often_from_the_email_and_staff_see_it(timed_app: Flask, world: World, db: Session, clock: Clock) -> None:
    client = timed_app.test_client()
    _staff_post(db, world, "Bella at the park today", clock.at)
    row = _send_digests(timed_app, db, world, clock)[0]
    found = re.search(r"Change how often we email you: https://portal\.test(/p/\S+/emails)", text_of(row))
    assert found, text_of(row)
    choice_page = found.group(1)
    page = client.get(choice_page)
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    token = _csrf(page.get_data(as_text=True))
    assert client.post(choice_page, data={"csrf_token": token, "choice": "daily", "time": "25:00"}).status_code == 400
    assert client.post(choice_page, data={"csrf_token": token, "choice": "daily", "time": "18:30"}).status_code == 302
    contact = db.get(Contact, row.recipient_id)
    assert contact is not None and (contact.email_choice, contact.summary_minute) == ("daily", 18 * 60 + 30)
    name = contact.name
    db.rollback()

    staff_client = timed_app.test_client()
    sign_in_as(timed_app, staff_client, world.senior)
    assert "Daily summary at 18:30" in staff_client.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    assert client.post(choice_page, data={"csrf_token": token, "choice": "paused"}).status_code == 302
    card = staff_client.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    assert "Emails paused since" in card and name in card
    assert "Emails paused since" in staff_client.get(f"/families/{world.scheduled.id}").get_data(as_text=True)
    # Staff still see everything, and the next staff message emails only the other parent.
    _staff_post(db, world, "Bella is asleep now", clock.at)
    assert [db.get(Contact, r.recipient_id).name for r in _send_digests(timed_app, db, world, clock)] == [  # type: ignore[union-attr]
        n for n in ("Emma Johnson", "Liam Johnson") if n != name
    ]


def _headers(row: OutboundEmail):  # type: ignore[no-untyped-def]
    import email
    from email import policy

    return email.message_from_bytes(row.raw or b"", policy=policy.default)


def test_one_click_unsubscribe_as_gmail_posts_it_pauses_that_parent_only(
    timed_app: Flask, world: World, db: Session, clock: Clock
) -> None:
    _staff_post(db, world, "Bella at the park today", clock.at)
    sent = _send_digests(timed_app, db, world, clock)
    liam = next(row for row in sent if db.get(Contact, row.recipient_id).name == "Liam Johnson")  # type: ignore[union-attr]
    db.rollback()
    message = _headers(liam)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    found = re.fullmatch(r"<https://portal\.test(/p/\S+/unsubscribe)>, <mailto:(unsubscribe\+\S+@reply\.test)>", " ".join(str(message["List-Unsubscribe"]).split()))
    assert found, message["List-Unsubscribe"]
    assert len(found.group(2).split("@")[0]) <= 64
    assert str(message["List-Id"]).endswith(".reply.test>") and "Happy Tails" in str(message["List-Id"])
    url = found.group(1)

    # A link scanner's GET shows a page and changes nothing.
    scanner = timed_app.test_client()
    page = scanner.get(url)
    assert page.status_code == 200 and "Pause my emails" in page.get_data(as_text=True)
    assert db.scalar(select(Contact.email_choice).where(Contact.name == "Liam Johnson")) == "each"
    db.rollback()
    # What Gmail sends: a cookie-less multipart POST whose only field is the RFC 8058 one.
    gmail = timed_app.test_client(use_cookies=False)
    assert gmail.post(url, data={"List-Unsubscribe": "Other"}, content_type="multipart/form-data").status_code == 400
    answer = gmail.post(url, data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data")
    assert answer.status_code == 200
    assert db.scalar(select(Contact.email_choice).where(Contact.name == "Liam Johnson")) == "paused"
    db.rollback()
    # The url-encoded form of it is accepted too, and pausing twice is harmless.
    assert gmail.post(url, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded").status_code == 200

    _staff_post(db, world, "Bella is asleep now", clock.at)
    after = _send_digests(timed_app, db, world, clock)
    assert [db.get(Contact, row.recipient_id).name for row in after] == ["Emma Johnson"]  # type: ignore[union-attr]


def test_an_internal_note_never_shows_on_the_parent_page(timed_app: Flask, world: World, db: Session, clock: Clock) -> None:
    """Rule 8 (issues 14 and 15 together): a staff-only note is not in the family's web view."""
    client = timed_app.test_client()
    link = _digest_link(timed_app, db, world, clock)
    thread, senior = db.get(Thread, world.thread.id), db.get(Staff, world.senior.id)
    assert thread is not None and senior is not None
    post_message(db, thread, senior, "Note: Bella nipped Jordan today", source="portal", internal=True, now=clock.at)
    db.commit()
    html = client.get(link).get_data(as_text=True)
    assert "Bella at the park today" in html
    assert "nipped Jordan" not in html


def test_an_emailed_reply_shows_only_its_new_words_not_the_quoted_digest(timed_app: Flask, world: World, db: Session, clock: Clock) -> None:
    """What the reply extractor trimmed (the quoted digest, a signature) stays off the parent's
    page, as in the staff thread: the parent sees what was written, once."""
    thread, emma = db.get(Thread, world.thread.id), db.get(Contact, world.scheduled.contacts[0].id)
    assert thread is not None and emma is not None
    quoted = "On Tue, Happy Tails wrote:\n> There is a new message from Happy Tails Pet Care\n> Return-Path: <bounce+1.abc@reply.test>"
    post_message(db, thread, emma, "See you at five.", source="email", trimmed=quoted, now=clock.at)
    db.commit()
    html = timed_app.test_client().get(_digest_link(timed_app, db, world, clock)).get_data(as_text=True)
    assert "See you at five." in html
    assert "Return-Path" not in html and "There is a new message from" not in html
