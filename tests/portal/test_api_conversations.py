"""Conversations over the API: threads newest first, messages with signed attachment links,
and posting as a staff member that notifies like a portal post."""

from __future__ import annotations

import io
import mailbox
from datetime import timedelta
from email import message_from_bytes
from email.policy import default

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from outbound import tasks
from outbound.queue import huey
from tests.factories import make_family
from tests.portal.conftest import PNG, World, sign_in_as
from tests.portal.test_api import assert_problem, bearer, key_for, writing
from threads.models import Business, Message, Staff, Thread
from threads.pages import parent_thread_page
from threads.posting import NewAttachment, post_message
from threads.types import utcnow


def test_threads_newest_first_with_the_family_id(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "messages:read")
    threads = client.get("/api/v1/threads", headers=bearer(secret)).get_json()["data"]
    # The Garcia thread's message was posted after the Johnson one's.
    assert [t["family_name"] for t in threads] == ["Garcia family", "Johnson family"]
    assert threads[1]["family_id"] == world.scheduled.external_id and threads[1]["id"] == world.thread.id
    page = client.get("/api/v1/threads?limit=1", headers=bearer(secret)).get_json()
    second = client.get(f"/api/v1/threads?limit=1&cursor={page['next_cursor']}", headers=bearer(secret)).get_json()
    assert [t["family_name"] for t in page["data"] + second["data"]] == ["Garcia family", "Johnson family"]
    assert second["next_cursor"] is None
    assert_problem(client.get("/api/v1/threads", headers=bearer(key_for(db, world.business.id, "directory:read"))), 403, "insufficient-scope")


def test_a_new_familys_thread_is_listed_last_so_software_can_post_the_first_message(client: FlaskClient, world: World, db: Session) -> None:
    """A family nobody has written to yet still has a thread; an integration must find it."""
    quiet = [make_family(db, world.business, name=f"Quiet family {n}") for n in range(3)]
    db.commit()
    secret = key_for(db, world.business.id, "messages:read")
    seen, cursor = [], None
    while True:
        page = client.get("/api/v1/threads?limit=2" + (f"&cursor={cursor}" if cursor else ""), headers=bearer(secret)).get_json()
        seen += [(t["family_name"], t["message_count"]) for t in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    names = [name for name, _count in seen]
    assert names[:2] == ["Garcia family", "Johnson family"]  # newest activity first
    assert set(names[2:]) >= {f.name for f in quiet} and len(names) == len(set(names))
    assert all(count == 0 for name, count in seen if name.startswith("Quiet"))
    assert {t["family_id"] for t in client.get("/api/v1/threads?limit=200", headers=bearer(secret)).get_json()["data"]} >= {f.external_id for f in quiet}


def test_messages_carry_signed_attachment_links_and_stay_in_the_business(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "messages:read")
    messages = client.get(f"/api/v1/threads/{world.thread.id}/messages", headers=bearer(secret)).get_json()["data"]
    assert [m["text"] for m in messages] == ["Bella ate well"]
    assert messages[0]["author"]["kind"] == "contact" and messages[0]["author"]["name"] == "Emma Johnson"
    link = messages[0]["attachments"][0]["url"]
    path = link.split("://", 1)[1].split("/", 1)[1]
    image = client.get("/" + path)  # no key, no session: the signature is the permission
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert_problem(client.get(f"/api/v1/threads/{world.foreign_thread.id}/messages", headers=bearer(secret)), 404, "not-found")
    assert_problem(client.get("/api/v1/threads/abc/messages", headers=bearer(secret)), 404, "not-found")


def test_posting_as_staff_stores_files_and_notifies_like_the_portal(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "messages:write")
    huey.flush()
    posted = client.post(
        f"/api/v1/threads/{world.thread.id}/messages",
        data={"staff": world.senior.email.upper(), "text": "Bella's walk went well", "files": [(io.BytesIO(b"%PDF-1.4 report"), "report.pdf")]},
        headers={**bearer(secret), "Idempotency-Key": "post-1"},
        content_type="multipart/form-data",
    )
    assert posted.status_code == 201, posted.get_data(as_text=True)
    record = posted.get_json()
    assert record["author"] == {"kind": "staff", "name": "Sam Senior", "id": world.senior.external_id}
    assert record["source"] == "api"  # the business's software wrote it, not someone in the portal
    assert [a["filename"] for a in record["attachments"]] == ["report.pdf"]
    message = db.scalar(select(Message).where(Message.id == record["id"]))
    assert message is not None and message.staff_id == world.senior.id and message.thread_id == world.thread.id
    assert message.source == "api"
    db.rollback()
    assert [t.args for t in huey.pending() if t.name.endswith("process_posted_message")] == [(record["id"],)]

    # The retry (a new multipart boundary, same fields and file) posts nothing and enqueues nothing more.
    retry = client.post(
        f"/api/v1/threads/{world.thread.id}/messages",
        data={"staff": world.senior.email.upper(), "text": "Bella's walk went well", "files": [(io.BytesIO(b"%PDF-1.4 report"), "report.pdf")]},
        headers={**bearer(secret), "Idempotency-Key": "post-1"},
        content_type="multipart/form-data",
    )
    assert retry.status_code == 201 and retry.get_json()["id"] == record["id"] and retry.headers["Idempotent-Replayed"] == "true"
    assert len([t for t in huey.pending() if t.name.endswith("process_posted_message")]) == 1

    as_json = client.post(f"/api/v1/threads/{world.thread.id}/messages", json={"staff": world.admin.email, "text": "Thanks!"}, headers=writing(secret))
    assert as_json.status_code == 201 and as_json.get_json()["author"]["name"] == "Ada Admin"
    foreign = client.post(f"/api/v1/threads/{world.thread.id}/messages", json={"staff": world.foreign_senior.email, "text": "hi"}, headers=writing(secret))
    assert assert_problem(foreign, 422, "invalid-request")["errors"][0]["pointer"] == "/staff"
    empty = client.post(f"/api/v1/threads/{world.thread.id}/messages", json={"staff": world.admin.email, "text": "  "}, headers=writing(secret))
    assert assert_problem(empty, 422, "invalid-request")["errors"][0]["pointer"] == "/text"
    assert_problem(client.post(f"/api/v1/threads/{world.foreign_thread.id}/messages", json={"staff": world.admin.email, "text": "x"}, headers=writing(secret)), 404, "not-found")
    huey.flush()


def test_posting_as_the_business_shows_its_name_and_notifies_parents_like_a_portal_post(
    app: Flask, client: FlaskClient, world: World, db: Session
) -> None:
    secret = key_for(db, world.business.id, "messages:write", "messages:read")
    business_name = world.business.name
    huey.flush()
    posted = client.post(
        f"/api/v1/threads/{world.thread.id}/messages",
        data={"as_business": "true", "text": "We are closed on Monday", "files": [(io.BytesIO(PNG), "closed.png")]},
        headers={**bearer(secret), "Idempotency-Key": "business-1"},
        content_type="multipart/form-data",
    )
    assert posted.status_code == 201, posted.get_data(as_text=True)
    record = posted.get_json()
    assert record["author"] == {"kind": "business", "name": business_name, "id": None}
    message = db.get(Message, record["id"])
    assert message is not None and message.author_type == "business" and message.staff_id is None and message.contact_id is None
    db.rollback()
    # Exactly what a portal post enqueues.
    assert [t.args for t in huey.pending() if t.name.endswith("process_posted_message")] == [(record["id"],)]
    listed = client.get(f"/api/v1/threads/{world.thread.id}/messages", headers=bearer(secret)).get_json()["data"]
    assert listed[-1]["author"] == record["author"]

    # The parents' digest carries it under the business's name, its picture attached.
    emma = world.scheduled.contacts[0]
    with app.app_context():
        tasks.run_digests([world.thread.id], now=utcnow() + timedelta(hours=1))
    settings = app.extensions["pawpost"].settings
    maildir = mailbox.Maildir(settings.maildir_path)  # type: ignore[arg-type]
    emails = [message_from_bytes(maildir.get_bytes(key), policy=default) for key in maildir.keys()]
    [digest] = [e for e in emails if emma.email in str(e["To"])]
    text = digest.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert f"{business_name} ·" in text and "We are closed on Monday" in text
    assert any(part.get_filename() == "closed.png" for part in digest.walk())

    # The parent page shows it like a team message; the staff page marks it "as the business".
    assert [(m.author_type, m.author_name) for m in parent_thread_page(db, world.thread.id)][-1] == ("business", business_name)
    db.rollback()
    sign_in_as(app, client, world.senior)
    page = client.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    assert "as the business" in page and f'<span class="author">{business_name}</span>' in page

    # One author, never both or none.
    both = client.post(f"/api/v1/threads/{world.thread.id}/messages", json={"as_business": True, "staff": world.admin.email, "text": "x"}, headers=writing(secret))
    assert_problem(both, 422, "invalid-request")
    assert_problem(client.post(f"/api/v1/threads/{world.thread.id}/messages", json={"text": "x"}, headers=writing(secret)), 422, "invalid-request")
    huey.flush()


def test_message_pages_carry_every_author_kind_and_each_messages_files_in_order(client: FlaskClient, world: World, db: Session) -> None:
    """The page is one statement over messages outer-joined to attachments: `limit` counts
    messages (not files), authors read as the ORM names them, a page past the end is empty."""
    thread = db.get(Thread, world.thread.id)
    senior = db.get(Staff, world.senior.id)
    assert thread is not None and senior is not None
    senior.external_id = "walker-7"
    files = [NewAttachment(f"f{n}.txt", "text/plain", b"x" * (n + 1)) for n in range(3)]
    posted = [
        post_message(db, thread, senior, "three files", files),
        post_message(db, thread, db.get(Business, world.business.id), "as the business"),
        post_message(db, thread, None, "a system note"),
        post_message(db, thread, thread.family.contacts[1], "", files[:1]),
    ]
    db.commit()
    posted_ids = [message.id for message in posted]
    expected = {}
    for message in db.scalars(select(Message).where(Message.thread_id == thread.id)):
        author_id = message.staff.external_id if message.staff else message.contact.external_id if message.contact else None
        expected[message.id] = (message.author_type, message.author_name, author_id, message.body, [(a.filename, a.size) for a in message.attachments])
    db.rollback()
    secret = key_for(db, world.business.id, "messages:read")
    seen, cursor = [], None
    while True:
        page = client.get(f"/api/v1/threads/{world.thread.id}/messages?limit=2" + (f"&cursor={cursor}" if cursor else ""), headers=bearer(secret)).get_json()
        assert len(page["data"]) <= 2
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [m["id"] for m in seen] == sorted(expected)
    for m in seen:
        assert (m["author"]["kind"], m["author"]["name"], m["author"]["id"], m["text"], [(a["filename"], a["size"]) for a in m["attachments"]]) == expected[m["id"]]
        assert m["thread_id"] == world.thread.id and all("/attachments/" in a["url"] for a in m["attachments"])
    assert [m["author"]["id"] for m in seen if m["id"] == posted_ids[0]] == ["walker-7"]
    assert [len(m["attachments"]) for m in seen if m["id"] in (posted_ids[0], posted_ids[3])] == [3, 1]
    past = client.get(f"/api/v1/threads/{world.thread.id}/messages?cursor={posted_ids[-1]}", headers=bearer(secret))
    assert past.status_code == 200 and past.get_json() == {"data": [], "next_cursor": None}
    assert_problem(client.get(f"/api/v1/threads/{world.foreign_thread.id}/messages?cursor=1", headers=bearer(secret)), 404, "not-found")
    assert_problem(client.get("/api/v1/threads/0/messages", headers=bearer(secret)), 404, "not-found")
