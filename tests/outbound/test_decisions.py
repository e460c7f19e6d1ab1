"""Who gets what, decided from the cursors with a fake clock, on SQLite and PostgreSQL.

Emails really go through SMTP to a recording relay; assertions are on what arrived.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from outbound import tasks
from outbound.queue import configure_queue
from tests.factories import make_appointment, make_business, make_family, make_staff
from tests.outbound.world import T0, build_world, carried, outbox_rows, post
from threads.models import Contact, ContactAddress, Family, Message, Staff, Thread
from threads.posting import post_message
from threads.reading import mark_read

DELAY = timedelta(seconds=180)


def recipients(handler) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(r for item in handler.received for r in item.rcpt_tos)


def test_a_burst_of_three_makes_one_digest_per_contact(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    staff = ("staff", world.walker_id)
    ids = [post(sessions, world, staff, f"Update {n}", T0 + timedelta(seconds=60 * n)) for n in range(3)]

    assert tasks.run_digests([world.thread_id], now=T0 + DELAY - timedelta(seconds=5)) == []
    created = tasks.run_digests([world.thread_id], now=T0 + DELAY)
    for later in (240, 300, 600):
        assert tasks.run_digests([world.thread_id], now=T0 + timedelta(seconds=later)) == []

    assert len(created) == 2
    assert recipients(handler) == sorted([world.primary_email, world.secondary_email])
    for row in outbox_rows(sessions, "digest"):
        assert row.state == "sent"
        assert carried(sessions, row.id) == ids
    body = handler.received[0].message.get_body(("plain",)).get_content()
    assert all(f"Update {n}" in body for n in range(3))


def test_a_contact_who_replied_in_between_gets_none(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    first = post(sessions, world, ("staff", world.walker_id), "Bella was great", T0)
    reply = post(sessions, world, ("contact", world.primary_id), "Thank you!", T0 + timedelta(seconds=60))

    tasks.run_digests([world.thread_id], now=T0 + DELAY)
    tasks.run_digests([world.thread_id], now=T0 + timedelta(seconds=60) + DELAY)

    assert recipients(handler) == [world.secondary_email]
    (row,) = outbox_rows(sessions, "digest")
    assert carried(sessions, row.id) == [first, reply]


def test_the_secondary_parents_message_reaches_the_primary_parent(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    message = post(sessions, world, ("contact", world.secondary_id), "Max needs his pills at noon", T0)

    tasks.run_digests([world.thread_id], now=T0 + DELAY)

    assert recipients(handler) == [world.primary_email]
    (row,) = outbox_rows(sessions, "digest")
    assert carried(sessions, row.id) == [message]
    assert "Max needs his pills at noon" in handler.received[0].message.get_body(("plain",)).get_content()


def test_a_message_is_never_in_two_digests(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    first = post(sessions, world, ("staff", world.walker_id), "Walk done", T0)
    tasks.run_digests([world.thread_id], now=T0 + DELAY)
    second = post(sessions, world, ("staff", world.senior_id), "Photos soon", T0 + timedelta(seconds=200))
    # The first message's task and a sweep run again; the second message is not due yet.
    tasks.run_digests([world.thread_id, world.thread_id], now=T0 + timedelta(seconds=250))
    tasks.run_digests([world.thread_id], now=T0 + timedelta(seconds=200) + DELAY)
    tasks.run_digests([world.thread_id], now=T0 + timedelta(seconds=900))

    rows = outbox_rows(sessions, "digest")
    assert len(rows) == 4 and len(handler.received) == 4
    for email in (world.primary_email, world.secondary_email):
        mine = [carried(sessions, r.id) for r in rows if r.recipient_email == email]
        assert mine == [[first], [second]]


def test_a_parent_who_read_the_thread_in_time_gets_nothing(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Walk done", T0)
    with sessions() as session, session.begin():
        thread = session.get(Thread, world.thread_id)
        contact = session.get(Contact, world.primary_id)
        mark_read(session, thread, contact.person)

    tasks.run_digests([world.thread_id], now=T0 + DELAY)

    assert recipients(handler) == [world.secondary_email]


def test_system_notes_and_bouncing_addresses_are_never_emailed(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    post(sessions, world, None, "Thread created", T0)
    tasks.run_digests([world.thread_id], now=T0 + DELAY)
    assert handler.received == []

    with sessions() as session, session.begin():
        session.execute(
            update(ContactAddress).where(ContactAddress.email == world.secondary_email).values(bouncing=True)
        )
    post(sessions, world, ("staff", world.walker_id), "Walk done", T0 + timedelta(seconds=10))
    tasks.run_digests([world.thread_id], now=T0 + timedelta(seconds=10) + DELAY)
    assert recipients(handler) == [world.primary_email]


def _staff_world(sessions):  # type: ignore[no-untyped-def]
    """The family plus staff with every kind of schedule, and a contact message posted now."""
    world = build_world(sessions)
    with sessions() as session, session.begin():
        family = session.get(Family, world.family_id)
        business = family.business
        boarder = make_staff(session, business, role="basic", name="Boarding Bo")
        make_appointment(session, family, [boarder], start=T0 - timedelta(days=2), hours=24 * 4, service="boarding")
        cancelled = make_staff(session, business, role="basic", name="Cancelled Cam")
        make_appointment(session, family, [cancelled], start=T0 + timedelta(hours=2), status="cancelled")
        tomorrow = make_staff(session, business, role="basic", name="Tomorrow Tia")
        make_appointment(session, family, [tomorrow], start=T0 + timedelta(days=1))
        # 23:30 in New York tonight is already tomorrow in UTC; 21:00 yesterday is today in UTC.
        late = make_staff(session, business, role="basic", name="Late Lou")
        make_appointment(session, family, [late], start=T0 + timedelta(hours=12, minutes=30), hours=0.5)
        early = make_staff(session, business, role="basic", name="Yesterday Yan")
        make_appointment(session, family, [early], start=T0 - timedelta(hours=18), hours=1)
        gone = make_staff(session, business, role="basic", name="Inactive Ida", active=False)
        make_appointment(session, family, [gone], start=T0)
        other_business = make_business(session, name="Other Paws")
        outsider = make_staff(session, other_business, role="senior", name="Outsider Oz")
        make_appointment(session, family, [outsider], start=T0)
        make_appointment(session, make_family(session, other_business), [outsider], start=T0)
        # A staff member who is also the writing parent (same address) is the author.
        author_as_staff = make_staff(session, business, role="basic", name="Emma At Work", email=world.primary_email)
        make_appointment(session, family, [author_as_staff], start=T0)
        expected = sorted([world.walker_email, boarder.email, late.email])
    return world, expected


def test_alerts_reach_exactly_the_staff_scheduled_today(settings, sessions, sink) -> None:
    handler, _ = sink
    world, expected = _staff_world(sessions)
    message = post(sessions, world, ("contact", world.primary_id), "Can you check Bella's paw?", T0)

    tasks.run_posted_message(message, now=T0)
    tasks.run_posted_message(message, now=T0 + timedelta(seconds=1))  # a duplicate push

    assert recipients(handler) == expected
    alert = handler.received[0].message
    assert alert["Reply-To"] == f"reply+{_token(sessions, world)}@reply.test"
    text = alert.get_body(("plain",)).get_content()
    assert "Can you check Bella's paw?" in text
    assert "Johnson family" in text and "Bella and Max" in text
    assert f"https://portal.test/threads/{world.thread_id}" in text
    assert "Now: " in text  # the appointment under way (issue 14: current or next, never a finished one)


def test_staff_messages_alert_nobody(settings, sessions, sink) -> None:
    handler, _ = sink
    world, _expected = _staff_world(sessions)
    message = post(sessions, world, ("staff", world.senior_id), "We are on our way", T0)
    tasks.run_posted_message(message, now=T0)
    assert outbox_rows(sessions, "alert") == []
    assert handler.received == []


def test_unread_parent_messages_escalate_once_to_senior_staff(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    post(sessions, world, ("contact", world.primary_id), "Is anyone there?", T0)
    post(sessions, world, ("contact", world.primary_id), "Hello?", T0 + timedelta(minutes=5))

    assert tasks.run_escalations([world.thread_id], now=T0 + timedelta(minutes=29)) == []
    created = tasks.run_escalations([world.thread_id], now=T0 + timedelta(minutes=31))
    assert tasks.run_escalations([world.thread_id], now=T0 + timedelta(minutes=32)) == []

    assert len(created) == 2
    with sessions() as session:
        seniors = session.scalars(select(Staff.email).where(Staff.id.in_([world.senior_id, world.admin_id])))
        assert recipients(handler) == sorted(seniors)
    text = handler.received[0].message.get_body(("plain",)).get_content()
    assert "Is anyone there?" in text and "Hello?" not in text  # the second is not 30 minutes old yet

    assert len(tasks.run_escalations([world.thread_id], now=T0 + timedelta(minutes=36))) == 2  # the second, once
    assert tasks.run_escalations([world.thread_id], now=T0 + timedelta(minutes=50)) == []
    assert len(handler.received) == 4


def test_a_message_read_by_any_staff_member_is_not_escalated(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    post(sessions, world, ("contact", world.primary_id), "Is anyone there?", T0)
    with sessions() as session, session.begin():
        thread = session.get(Thread, world.thread_id)
        mark_read(session, thread, session.get(Staff, world.walker_id).person)
    assert tasks.run_escalations([world.thread_id], now=T0 + timedelta(minutes=31)) == []
    due = tasks.run_sweep(T0 + timedelta(minutes=31))
    assert due.escalation_thread_ids == []
    assert handler.received == []


def test_the_sweep_re_derives_lost_pushes_exactly_once(settings, sessions, sink) -> None:
    """No task ever ran (the queue lost every push): the sweep finds and sends it all, once."""
    handler, _ = sink
    world = build_world(sessions)
    staff_message = post(sessions, world, ("staff", world.walker_id), "Walk done", T0)
    parent_message = post(sessions, world, ("contact", world.secondary_id), "Thanks", T0 + timedelta(seconds=30))

    early = tasks.run_sweep(T0 + timedelta(seconds=60))
    assert early.digest_thread_ids == [] and early.alert_message_ids == [parent_message]

    for minute in (4, 5, 31, 32):
        tasks.run_due_inline(tasks.run_sweep(T0 + timedelta(minutes=minute)), T0 + timedelta(minutes=minute))

    kinds = sorted((row.kind, row.recipient_email) for row in outbox_rows(sessions))
    with sessions() as session:
        seniors = sorted(session.scalars(select(Staff.email).where(Staff.role != "basic")))
    assert kinds == sorted(
        [("alert", world.walker_email), ("digest", world.primary_email)]  # the writer read what came before
        + [("escalation", email) for email in seniors]
    )
    assert len(handler.received) == len(kinds)
    primary_digest = next(r for r in outbox_rows(sessions, "digest") if r.recipient_email == world.primary_email)
    assert carried(sessions, primary_digest.id) == [staff_message, parent_message]
    assert tasks.run_sweep(T0 + timedelta(minutes=40)).total == 0
    with sessions() as session:
        assert session.get(Message, parent_message).alerted_at is not None


def _token(sessions, world) -> str:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.get(Thread, world.thread_id).reply_token


def test_staff_images_are_attached_within_the_cap_and_everything_else_is_linked(settings, sessions, sink, tmp_path) -> None:
    from outbound.links import verify_attachment_token
    from threads.posting import NewAttachment

    configure_queue(settings.replace(attachment_email_cap_bytes=1000))
    handler, _ = sink
    world = build_world(sessions)
    small, big = b"\x89PNG" + b"s" * 500, b"\x89PNG" + b"b" * 900
    with sessions() as session, session.begin():
        thread = session.get(Thread, world.thread_id)
        files = [
            NewAttachment("small.png", "image/png", small),
            NewAttachment("big.png", "image/png", big),
            NewAttachment("vet.pdf", "application/pdf", b"%PDF-1.4"),
        ]
        post_message(session, thread, session.get(Staff, world.walker_id), "Photos!", files, now=T0)
        post_message(session, thread, session.get(Contact, world.secondary_id), "", [NewAttachment("mine.png", "image/png", small)], now=T0)

    tasks.run_digests([world.thread_id], now=T0 + DELAY)

    (item,) = [r for r in handler.received if r.rcpt_tos == [world.primary_email]]
    email = item.message
    images = [part for part in email.walk() if part.get_content_type() == "image/png"]
    assert [part.get_content() for part in images] == [small]  # only the staff image that fits
    text = email.get_body(("plain",)).get_content()
    links = [line.split(" ", 2)[2] for line in text.splitlines() if line.startswith("[file: ")]
    assert len(links) == 3 and all(link.startswith("https://portal.test/attachments/") for link in links)
    for link in links:
        attachment_id, token = link.rsplit("/", 2)[-2:]
        assert verify_attachment_token(settings.secret_key, int(attachment_id), token)
