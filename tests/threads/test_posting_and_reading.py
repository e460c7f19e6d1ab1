"""Rules 2, 3 and 6 on both databases: posting, unread per person, the inbox, digests owed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from tests.factories import make_business, make_family, make_staff, thread_of
from threads.errors import AccessDenied, EmptyMessage
from threads.pages import messages_after, parent_thread_page, thread_page
from threads.posting import NewAttachment, post_message
from threads.reading import (
    has_unread,
    inbox,
    mark_notified,
    mark_read,
    pending_notifications,
    read_position,
    unread_messages,
)

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def test_posting_moves_thread_and_poster_cursor(db: Session) -> None:
    business = make_business(db)
    staff = make_staff(db, business)
    family = make_family(db, business)
    thread = thread_of(db, family)
    first = post_message(db, thread, staff, "Bella had a great walk!", now=NOW)
    second = post_message(db, thread, family.contacts[0], "Thank you!", now=NOW + timedelta(minutes=1))
    db.commit()
    db.refresh(thread)
    assert thread.last_message_id == second.id
    assert thread.last_message_at == NOW + timedelta(minutes=1)
    assert thread.message_count == 2
    assert read_position(db, thread, staff.person) == first.id
    assert read_position(db, thread, family.contacts[0].person) == second.id
    assert [m.id for m in unread_messages(db, thread, staff.person)] == [second.id]
    assert unread_messages(db, thread, family.contacts[0].person) == []


def test_attachments_are_stored_with_size_and_hash(db: Session) -> None:
    business = make_business(db)
    family = make_family(db, business)
    thread = thread_of(db, family)
    message = post_message(
        db, thread, make_staff(db, business), "", [NewAttachment("bella.jpg", "image/jpeg", b"\xff\xd8jpeg")]
    )
    db.commit()
    (attachment,) = message.attachments
    assert (attachment.filename, attachment.size) == ("bella.jpg", 6)
    assert len(attachment.sha256) == 64


def test_empty_message_is_refused(db: Session) -> None:
    business = make_business(db)
    thread = thread_of(db, make_family(db, business))
    with pytest.raises(EmptyMessage):
        post_message(db, thread, make_staff(db, business), "  \n ")


def test_mark_read_never_moves_back(db: Session) -> None:
    business = make_business(db)
    staff = make_staff(db, business)
    family = make_family(db, business)
    thread = thread_of(db, family)
    messages = [post_message(db, thread, family.contacts[0], f"m{i}") for i in range(3)]
    mark_read(db, thread, staff.person)
    mark_read(db, thread, staff.person, messages[0].id)
    db.commit()
    assert read_position(db, thread, staff.person) == messages[-1].id


def test_unread_is_per_person(db: Session) -> None:
    business = make_business(db)
    alice, bob = make_staff(db, business), make_staff(db, business)
    family = make_family(db, business)
    thread = thread_of(db, family)
    post_message(db, thread, family.contacts[0], "Is Bella ok?")
    db.commit()
    assert has_unread(db, alice, NOW) and has_unread(db, bob, NOW)
    mark_read(db, thread, alice.person)
    db.commit()
    assert not has_unread(db, alice, NOW)
    assert has_unread(db, bob, NOW)


def test_inbox_is_newest_first_with_unread_flags_and_pets(db: Session) -> None:
    business = make_business(db)
    me = make_staff(db, business)
    older = make_family(db, business, name="Older family", pets=("Rex", "Fido"))
    newer = make_family(db, business, name="Newer family", pets=("Bella",))
    silent = make_family(db, business, name="Silent family")
    post_message(db, thread_of(db, older), older.contacts[0], "first line\nsecond line", now=NOW)
    post_message(db, thread_of(db, newer), me, "Walk done", now=NOW + timedelta(minutes=5))
    db.commit()
    rows = inbox(db, me)
    assert [r.family_name for r in rows] == ["Newer family", "Older family"]
    assert [r.unread for r in rows] == [False, True]
    assert rows[1].last_message_preview == "first line"
    assert rows[1].last_author_name == "Emma Johnson"
    assert sorted(rows[1].pet_names.split(", ")) == ["Fido", "Rex"]
    assert silent.id not in {r.family_id for r in rows}


def test_inbox_never_shows_another_business(db: Session) -> None:
    mine, theirs = make_business(db), make_business(db, name="Other")
    me = make_staff(db, mine)
    other_family = make_family(db, theirs)
    post_message(db, thread_of(db, other_family), other_family.contacts[0], "hello")
    db.commit()
    assert inbox(db, me) == []
    assert not has_unread(db, me, NOW)


def test_basic_staff_have_no_inbox(db: Session) -> None:
    business = make_business(db)
    with pytest.raises(AccessDenied):
        inbox(db, make_staff(db, business, role="basic"))


def test_pending_notifications_hold_every_unread_unemailed_message_once(db: Session) -> None:
    business = make_business(db)
    staff = make_staff(db, business)
    family = make_family(db, business)
    primary, secondary = family.contacts
    thread = thread_of(db, family)
    own = post_message(db, thread, primary, "my own words")
    burst = [post_message(db, thread, staff, f"update {i}") for i in range(3)]
    from_partner = post_message(db, thread, secondary, "from the other parent")
    post_message(db, thread, None, "Auto-reply from somebody")
    db.commit()
    owed = pending_notifications(db, thread, primary)
    assert [m.id for m in owed] == [m.id for m in burst] + [from_partner.id]
    assert own.id not in {m.id for m in pending_notifications(db, thread, primary)}
    mark_notified(db, thread, primary, from_partner.id)
    db.commit()
    assert pending_notifications(db, thread, primary) == []
    later = post_message(db, thread, staff, "one more")
    db.commit()
    assert [m.id for m in pending_notifications(db, thread, primary)] == [later.id]


def test_a_contact_who_read_by_replying_is_owed_nothing(db: Session) -> None:
    business = make_business(db)
    staff = make_staff(db, business)
    family = make_family(db, business)
    thread = thread_of(db, family)
    post_message(db, thread, staff, "Bella is ready for pickup")
    post_message(db, thread, family.contacts[0], "On my way")
    db.commit()
    assert pending_notifications(db, thread, family.contacts[0]) == []


def test_thread_page_is_the_newest_fifty_oldest_first(db: Session) -> None:
    business = make_business(db)
    staff = make_staff(db, business)
    thread = thread_of(db, make_family(db, business))
    ids = [post_message(db, thread, staff, f"m{i}").id for i in range(60)]
    db.commit()
    page = thread_page(db, thread.id)
    assert [m.id for m in page] == ids[-50:]
    assert [m.id for m in thread_page(db, thread.id, before_id=ids[10])] == ids[:10]


def test_a_page_counts_messages_not_attachments_and_keeps_each_messages_files_in_order(db: Session) -> None:
    business = make_business(db)
    staff = make_staff(db, business)
    family = make_family(db, business)
    thread = thread_of(db, family)
    files = [NewAttachment(f"f{n}.txt", "text/plain", b"x" * (n + 1)) for n in range(3)]
    first = post_message(db, thread, staff, "three files", files)
    plain = post_message(db, thread, staff, "none")
    last = post_message(db, thread, family.contacts[0], "one file", files[:1])
    db.commit()
    page = thread_page(db, thread.id, limit=2)
    assert [(m.id, [a.filename for a in m.attachments]) for m in page] == [(plain.id, []), (last.id, ["f0.txt"])]
    (oldest,) = thread_page(db, thread.id, before_id=plain.id, limit=1)
    assert oldest.id == first.id
    assert [(a.filename, a.size) for a in oldest.attachments] == [("f0.txt", 1), ("f1.txt", 2), ("f2.txt", 3)]
    assert [m.id for m in messages_after(db, thread.id, 0, limit=2)] == [first.id, plain.id]
    assert [len(m.attachments) for m in parent_thread_page(db, thread.id)] == [3, 0, 1]


def test_pages_of_a_thread_never_show_a_neighbours_messages_and_take_any_bound(db: Session) -> None:
    """Pages are ranges of index (thread_id, id): the thread's own messages only, whatever
    the bound (a URL's `before` may be anything)."""
    business = make_business(db)
    staff = make_staff(db, business)
    threads = [thread_of(db, make_family(db, business)) for _ in range(3)]
    ids: dict[int, list[int]] = {t.id: [] for t in threads}
    for n in range(12):
        thread = threads[n % 3]
        ids[thread.id].append(post_message(db, thread, staff, f"m{n}").id)
    db.commit()
    middle = threads[1].id
    assert [m.id for m in thread_page(db, middle)] == ids[middle]
    assert [m.id for m in thread_page(db, middle, before_id=10**12)] == ids[middle]
    assert [m.id for m in thread_page(db, middle, before_id=ids[middle][2])] == ids[middle][:2]
    assert thread_page(db, middle, before_id=ids[middle][0]) == [] and thread_page(db, middle, before_id=-5) == []
    assert [m.id for m in parent_thread_page(db, middle, limit=2)] == ids[middle][-2:]
    assert [m.id for m in messages_after(db, middle, ids[middle][1])] == ids[middle][2:]
    assert messages_after(db, middle, 10**12) == [] and [m.id for m in messages_after(db, middle, -1)] == ids[middle]
