"""Reading and posting in a thread through the Flask test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from outbound.queue import huey
from portal.conversation import parent_states, thread_states
from tests.factories import make_family
from tests.portal.conftest import World, csrf_token, sign_in_as
from threads.cursors import advance_cursor
from threads.models import Business, ContactAddress, Message, OutboundEmail, ReadCursor, Thread
from threads.posting import post_message
from threads.reading import mark_notified
from threads.types import utcnow


def _post(client: FlaskClient, path: str, **data: object):  # type: ignore[no-untyped-def]
    return client.post(path, data={"csrf_token": csrf_token(client), **data}, headers={"Accept": "application/json"})


def test_opening_a_thread_marks_it_read_for_me_only(app: Flask, client: FlaskClient, world: World) -> None:
    other = app.test_client()
    sign_in_as(app, client, world.senior)
    sign_in_as(app, other, world.senior2)
    ids = f"{world.thread.id},{world.other_thread.id}"
    assert client.get(f"/api/unread?ids={ids}").get_json()["unread"] == sorted([world.thread.id, world.other_thread.id])
    assert client.get("/messages").get_data(as_text=True).count('aria-label="unread" hidden') == 0
    client.get(f"/threads/{world.thread.id}")
    mine = client.get(f"/api/unread?ids={ids}").get_json()
    theirs = other.get(f"/api/unread?ids={ids}").get_json()
    assert mine == {"tab": True, "unread": [world.other_thread.id], "version": mine["version"], "held": 2}
    assert theirs["unread"] == sorted([world.thread.id, world.other_thread.id])
    client.get(f"/threads/{world.other_thread.id}")
    assert client.get(f"/api/unread?ids={ids}").get_json()["tab"] is False
    assert other.get(f"/api/unread?ids={ids}").get_json()["tab"] is True


def test_the_tab_dot_comes_back_with_the_next_message(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    """Polls remember "all read" (portal.caught_up); a new message must still light the dot."""
    sign_in_as(app, client, world.senior)
    ids = f"{world.thread.id},{world.other_thread.id}"
    client.get(f"/threads/{world.thread.id}")
    client.get(f"/threads/{world.other_thread.id}")
    assert [client.get(f"/api/unread?ids={ids}").get_json()["tab"] for _ in range(3)] == [False] * 3
    thread = db.get(Thread, world.other_thread.id)
    post_message(db, thread, thread.family.contacts[0], "Can Luna stay an extra night?", source="email")
    db.commit()
    assert client.get(f"/api/unread?ids={ids}").get_json() | {"version": ""} == {
        "tab": True, "unread": [world.other_thread.id], "version": "", "held": 2
    }


def test_inbox_lists_newest_first_with_pets_preview_and_dots(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    thread = db.get(Thread, world.other_thread.id)
    post_message(db, thread, db.get(type(world.senior), world.senior2.id), "Luna is better\nsecond line", now=utcnow() + timedelta(seconds=1))
    db.commit()
    sign_in_as(app, client, world.senior)
    page = client.get("/messages").get_data(as_text=True)
    assert page.index("Garcia family") < page.index("Johnson family")
    assert "Sky Senior:</span> Luna is better" in page and "second line" not in page
    assert "Luna" in page and "Bella" in page
    assert re.search(r'data-relative>(just now|\d+ min ago)</time>', page)
    rows = client.get("/messages/rows").get_data(as_text=True)
    assert rows.count('class="thread-row unread"') == 2 and 'aria-label="unread" hidden' not in rows
    client.get(f"/threads/{world.other_thread.id}")
    rows = client.get("/messages/rows").get_data(as_text=True)
    assert rows.count('class="thread-row unread"') == 1 and rows.count('aria-label="unread" hidden') == 1


def test_posting_keeps_lines_stores_files_and_tells_outbound(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    sign_in_as(app, client, world.senior)
    response = client.post(
        f"/threads/{world.thread.id}/messages",
        data={
            "csrf_token": csrf_token(client),
            "body": "First line\nSecond line",
            "files": [(io.BytesIO(b"%PDF-1.4 vaccination"), "records.pdf"), (io.BytesIO(b"<script>x</script>"), "page.html")],
        },
        headers={"Accept": "application/json"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    message_id = response.get_json()["id"]
    message = db.scalar(select(Message).where(Message.id == message_id))
    assert message is not None and message.body == "First line\nSecond line" and message.staff_id == world.senior.id
    assert sorted(a.filename for a in message.attachments) == ["page.html", "records.pdf"]
    files = {a.filename: a.id for a in message.attachments}
    db.rollback()
    assert any(t.name.endswith("process_posted_message") and t.args == (message_id,) for t in huey.pending())

    pdf = client.get(f"/attachments/{files['records.pdf']}")
    assert pdf.data == b"%PDF-1.4 vaccination" and pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Disposition"].startswith("attachment;") and "records.pdf" in pdf.headers["Content-Disposition"]
    html = client.get(f"/attachments/{files['page.html']}")
    assert html.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in html.headers["Content-Security-Policy"] and html.headers["X-Content-Type-Options"] == "nosniff"
    image = client.get(f"/attachments/{world.image.id}")
    assert image.mimetype == "image/png" and image.headers["Content-Disposition"].startswith("inline;")

    page = client.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    assert "First line\nSecond line" in page
    assert f'href="/attachments/{files["records.pdf"]}" download' in page
    assert f'<img src="/attachments/{world.image.id}" alt="bella.png"' in page


def test_an_empty_message_is_refused(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in_as(app, client, world.senior)
    response = _post(client, f"/threads/{world.thread.id}/messages", body="  \n ")
    assert response.status_code == 400 and "Write something" in response.get_json()["error"]


def test_polling_returns_only_newer_messages_and_reads_them_when_visible(
    app: Flask, client: FlaskClient, world: World, db: Session
) -> None:
    sign_in_as(app, client, world.senior)
    opened = client.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    after = int(re.search(r'data-after="(\d+)"', opened).group(1))  # type: ignore[union-attr]
    assert client.get(f"/threads/{world.thread.id}/messages?after={after}").get_json() == {"html": "", "last_id": after}
    thread = db.get(Thread, world.thread.id)
    contact = thread.family.contacts[1]
    newer = post_message(db, thread, contact, "Running late <b>today</b>", source="email")
    db.commit()
    newer_id = newer.id
    unseen = client.get(f"/threads/{world.thread.id}/messages?after={after}&read=0").get_json()
    assert unseen["last_id"] == newer_id and "Running late &lt;b&gt;today&lt;/b&gt;" in unseen["html"]
    assert 'badge-family">family' in unseen["html"] and "Liam Johnson" in unseen["html"]
    assert client.get(f"/api/unread?ids={world.thread.id}").get_json()["unread"] == [world.thread.id]
    client.get(f"/threads/{world.thread.id}/messages?after={after}&read=1")
    assert client.get(f"/api/unread?ids={world.thread.id}").get_json()["unread"] == []


def test_hostile_email_content_is_inert(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    thread = db.get(Thread, world.thread.id)
    post_message(
        db,
        thread,
        thread.family.contacts[0],
        '<script>alert("body")</script><img src=x onerror="alert(1)">',
        source="email",
        trimmed="> quoted <script>alert(2)</script>",
        html='<p>Hi<script>alert(3)</script><img src="x" onerror="alert(4)"><a href="javascript:alert(5)">link</a></p>',
    )
    db.commit()
    sign_in_as(app, client, world.senior)
    page = client.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#34;body&#34;)&lt;/script&gt;&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert "Show trimmed text" in page and "&gt; quoted &lt;script&gt;alert(2)&lt;/script&gt;" in page
    original = page[page.index('class="email-html"') :]
    original = original[: original.index("</details>")]
    assert "<p>Hi" in original and "script" not in original and "onerror" not in original and "javascript:" not in original


def test_thread_shows_each_parents_delivery_state_and_system_notes(
    app: Flask, client: FlaskClient, world: World, db: Session
) -> None:
    thread = db.get(Thread, world.thread.id)
    emma, liam = thread.family.contacts
    staff_message = post_message(db, thread, db.get(type(world.senior), world.senior.id), "Walk done")
    post_message(db, thread, None, "Auto-reply from Liam Johnson was not posted (out of office)")
    now = utcnow()
    db.add(
        OutboundEmail(
            business_id=thread.business_id, thread_id=thread.id, kind="digest", dedupe_key="d1", recipient_kind="contact",
            recipient_id=emma.id, recipient_email=emma.email, message_id_header="m1@reply.test", subject="s",
            up_to_message_id=staff_message.id, state="sent", sent_at=now - timedelta(minutes=2), created_at=now,
        )
    )
    mark_notified(db, thread, emma, staff_message.id)
    advance_cursor(db, ReadCursor, thread.id, emma.person, staff_message.id)
    address = db.scalar(select(ContactAddress).where(ContactAddress.contact_id == liam.id))
    address.bouncing, address.bounce_reason = True, "550 mailbox unavailable"
    db.commit()
    sign_in_as(app, client, world.senior)
    page = client.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    emma_card = page[page.index(f'data-contact-id="{emma.id}"') :][:1500]
    liam_card = page[page.index(f'data-contact-id="{liam.id}"') :][:1500]
    assert "Emailed <time" in emma_card and "2 min ago" in emma_card and "Read <time" in emma_card
    assert "Bouncing" in liam_card and "550 mailbox unavailable" in liam_card
    assert "Emailed to Emma · Read by Emma" in page
    assert 'class="msg msg-system"' in page and "Auto-reply from Liam Johnson was not posted" in page


def test_a_family_without_a_thread_gets_one_on_the_first_message(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    family = make_family(db, db.get(Business, world.business.id), name="Nguyen family", contacts=("Linh Nguyen",), pets=("Max",))
    db.delete(db.scalar(select(Thread).where(Thread.family_id == family.id)))
    db.commit()
    family_id = family.id
    db.rollback()
    sign_in_as(app, client, world.senior)
    assert client.get("/api/search?q=max").get_json()["results"][0]["url"] == f"/families/{family_id}/thread"
    page = client.get(f"/families/{family_id}/thread")
    assert page.status_code == 200 and "No messages yet" in page.get_data(as_text=True)
    posted = _post(client, f"/families/{family_id}/messages", body="Welcome to Happy Tails!")
    thread_id = posted.get_json()["thread_id"]
    assert client.get(f"/families/{family_id}/thread").location == f"/threads/{thread_id}"


def test_mark_as_unread_is_for_me_only_and_skips_my_own_messages(
    app: Flask, client: FlaskClient, world: World, db: Session
) -> None:
    other = app.test_client()
    sign_in_as(app, client, world.senior)
    sign_in_as(app, other, world.senior2)
    ids = f"{world.thread.id}"
    client.get(f"/threads/{world.thread.id}")
    other.get(f"/threads/{world.thread.id}")
    _post(client, f"/threads/{world.thread.id}/messages", body="On my way")  # my own, newest
    assert client.get(f"/api/unread?ids={ids}").get_json()["unread"] == []
    response = client.post(f"/threads/{world.thread.id}/unread", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/messages")
    assert client.get(f"/api/unread?ids={ids}").get_json()["unread"] == [world.thread.id]
    assert 'class="thread-row unread"' in client.get("/messages/rows").get_data(as_text=True)
    # Sky read the thread before my message; mine is unread for Sky, Sky's state is untouched.
    assert other.get(f"/api/unread?ids={ids}").get_json()["unread"] == [world.thread.id]
    db.rollback()
    cursor = db.scalar(select(ReadCursor.message_id).where(
        ReadCursor.thread_id == world.thread.id, ReadCursor.person_kind == "staff", ReadCursor.person_id == world.senior.id))
    parent_message = db.scalar(select(Message.id).where(Message.thread_id == world.thread.id, Message.contact_id.is_not(None)).order_by(Message.id.desc()))
    assert cursor == parent_message - 1  # before the newest message not mine
    db.rollback()
    client.get(f"/threads/{world.thread.id}")  # opening it reads it again
    assert client.get(f"/api/unread?ids={ids}").get_json()["unread"] == []


def test_parent_states_read_every_contacts_cursors_outbox_and_addresses_in_one_statement(
    app: Flask, world: World, db: Session
) -> None:
    thread = db.get(Thread, world.thread.id)
    assert thread is not None
    emma, liam = thread.family.contacts
    first = post_message(db, thread, db.get(type(world.senior), world.senior.id), "Walk done")
    second = post_message(db, thread, db.get(type(world.senior), world.senior.id), "Home again")
    now = utcnow()

    def email(n: int, contact, state: str, sent_at=None) -> OutboundEmail:  # type: ignore[no-untyped-def]
        return OutboundEmail(
            business_id=thread.business_id, thread_id=thread.id, kind="digest", dedupe_key=f"d{n}", recipient_kind="contact",
            recipient_id=contact.id, recipient_email="x@a.test", message_id_header=f"m{n}@reply.test", subject="s",
            up_to_message_id=second.id, state=state, sent_at=sent_at, created_at=now,
        )

    db.add_all([
        email(1, emma, "sent", now - timedelta(hours=3)), email(2, emma, "sent", now - timedelta(minutes=5)),
        email(3, liam, "queued"), email(4, liam, "failed", now),
    ])
    db.add(ContactAddress(contact_id=liam.id, email="liam.work@a.test", bouncing=True, bounce_reason="550 gone", bounced_at=now))
    mark_notified(db, thread, emma, second.id)
    mark_notified(db, thread, liam, first.id)
    advance_cursor(db, ReadCursor, thread.id, emma.person, first.id)
    advance_cursor(db, ReadCursor, thread.id, world.senior.person, second.id)
    db.commit()
    statements: list[str] = []
    family = thread.family
    event.listen(db.get_bind(), "before_cursor_execute", lambda *args: statements.append(args[2].split()[0]))
    states, reader_at = thread_states(db, thread, family, world.senior.id)
    assert [s for s in statements if s != "BEGIN"] == ["SELECT"]
    by_name = {state.name: state for state in states}
    assert [state.name for state in states] == [emma.name, liam.name]  # primary first
    assert by_name[emma.name].emailed_at == now - timedelta(minutes=5) and not by_name[emma.name].email_queued
    assert (by_name[emma.name].notified_up_to, by_name[emma.name].read_up_to) == (second.id, first.id)
    assert by_name[emma.name].read_at is not None and by_name[emma.name].read_at.tzinfo is not None
    assert by_name[liam.name].emailed_at is None and by_name[liam.name].email_queued  # a failed email is not "sent"
    assert (by_name[liam.name].notified_up_to, by_name[liam.name].read_up_to, by_name[liam.name].read_at) == (first.id, 0, None)
    assert len(by_name[liam.name].emails) == 2 and not by_name[liam.name].bouncing  # one of two addresses bounces
    assert reader_at == second.id
    assert thread_states(db, thread, thread.family, world.senior2.id)[1] == 0
    assert parent_states(db, thread, thread.family) == states
    assert parent_states(db, None, thread.family)[0].notified_up_to == 0


def test_a_thread_view_that_shows_nothing_new_writes_nothing(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    sign_in_as(app, client, world.senior)
    writes: list[str] = []

    def noted(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
        if statement.split()[0] in ("INSERT", "UPDATE", "DELETE"):
            writes.append(" ".join(statement.split()[:3]))

    event.listen(app.extensions["pawpost"].engine, "before_cursor_execute", noted)
    client.get(f"/threads/{world.thread.id}")
    assert "INSERT INTO read_cursors" in writes  # the first view marks it read
    writes.clear()
    client.get(f"/threads/{world.thread.id}")
    assert not [w for w in writes if "read_cursors" in w]
    ids = f"{world.thread.id}"
    assert client.get(f"/api/unread?ids={ids}").get_json()["unread"] == []
    # A new message: the next view marks it read again.
    post_message(db, db.get(Thread, world.thread.id), db.get(type(world.senior2), world.senior2.id), "From a colleague")
    db.commit()
    assert client.get(f"/api/unread?ids={ids}").get_json()["unread"] == [world.thread.id]
    writes.clear()
    client.get(f"/threads/{world.thread.id}")
    assert "INSERT INTO read_cursors" in writes
    assert client.get(f"/api/unread?ids={ids}").get_json()["unread"] == []
