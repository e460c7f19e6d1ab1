"""Reading: unread state (rule 2), the inbox (rule 6) and what a contact is owed (rule 3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, bindparam, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased, selectinload

from threads.cursors import advance_cursor, cursor_position
from threads.errors import AccessDenied
from threads.models import (
    Contact,
    Family,
    Message,
    NotifiedCursor,
    Person,
    Pet,
    ReadCursor,
    Staff,
    Thread,
)
from threads.posting import author_label, parent_visible, visible_to_parents
from threads.schedule import business_today, families_for_staff
from threads.types import utcnow

PREVIEW_CHARS = 140
# The tab dot first looks at this many most recently active threads (see _senior_dot_query).
RECENT_THREADS = 50


@dataclass(frozen=True)
class ThreadSummary:
    """One inbox row: enough to draw it without another query."""

    thread_id: int
    family_id: int
    family_name: str
    pet_names: str
    last_message_at: datetime | None
    last_message_preview: str
    last_author_name: str
    message_count: int
    unread: bool


def mark_read(session: Session, thread: Thread, person: Person, up_to_message_id: int | None = None) -> None:
    """Move the person's read cursor forward (never back), to the newest message by default."""
    target = thread.last_message_id if up_to_message_id is None else up_to_message_id
    if target:
        advance_cursor(session, ReadCursor, thread.id, person, target)


def mark_unread(session: Session, thread: Thread, staff: Staff) -> int | None:
    """"Mark as unread", for this staff member only: their read cursor moves back to just
    before the newest message they did not write, so the thread shows unread for them again
    (and for nobody else). Returns the message it is unread from, None when every message is
    their own (nothing could be unread)."""
    person = staff.person
    newest = session.scalar(
        select(func.max(Message.id)).where(Message.thread_id == thread.id, _not_written_by(person))
    )
    if newest is None:
        return None
    session.execute(
        update(ReadCursor)
        .where(
            ReadCursor.thread_id == thread.id,
            ReadCursor.person_kind == person.kind,
            ReadCursor.person_id == person.id,
            ReadCursor.message_id >= newest,
        )
        .values(message_id=newest - 1, updated_at=utcnow())
    )
    return newest


def read_position(session: Session, thread: Thread, person: Person) -> int:
    return cursor_position(session, ReadCursor, thread.id, person)


def _not_written_by(person: Person) -> ColumnElement[bool]:
    column = Message.staff_id if person.kind == "staff" else Message.contact_id
    return or_(column.is_(None), column != person.id)


def unread_messages(session: Session, thread: Thread, person: Person) -> list[Message]:
    """Messages newer than the person's read cursor and not written by them, oldest first
    (for a parent, without internal notes)."""
    cursor = read_position(session, thread, person)
    query = (
        select(Message)
        .where(Message.thread_id == thread.id, Message.id > cursor, _not_written_by(person))
        .order_by(Message.id)
    )
    if person.kind == "contact":
        query = visible_to_parents(query)  # rule 8: a note is never unread for a parent
    return list(session.scalars(query))


def pending_notifications(session: Session, thread: Thread, contact: Contact) -> list[Message]:
    """What one digest must hold for a contact: unread for them and not yet emailed.

    System notes and internal notes (rule 8) are for staff; a contact's own words never
    come back to them.
    """
    person = contact.person
    floor = max(
        cursor_position(session, ReadCursor, thread.id, person),
        cursor_position(session, NotifiedCursor, thread.id, person),
    )
    query = (
        select(Message)
        .options(selectinload(Message.attachments), selectinload(Message.staff), selectinload(Message.contact))
        .where(
            Message.thread_id == thread.id,
            Message.id > floor,
            Message.author_type != "system",
            parent_visible(),
            _not_written_by(person),
        )
        .order_by(Message.id)
    )
    return list(session.scalars(query))


def mark_notified(session: Session, thread: Thread, contact: Contact, up_to_message_id: int) -> None:
    """Record that the contact was emailed about everything up to this message."""
    advance_cursor(session, NotifiedCursor, thread.id, contact.person, up_to_message_id)


# The read queries below are built once and take their ids as parameters: they run on
# every portal page (the tab dot is polled), and building them costs more than the
# database's answer. A plain join to the cursors is avoided on purpose: a person's cursor
# count is skewed (a senior holds one per thread, a contact a handful), and a prepared
# statement's generic plan, made for the average person, scanned all of a senior's cursors
# for every inbox row. Each query below has one good plan whoever asks.


def _my_cursor(thread_id: ColumnElement[int]) -> ScalarSelect[int]:
    """The asking staff member's cursor on the row's thread: one index probe per row."""
    return (
        select(ReadCursor.message_id)
        .where(
            ReadCursor.thread_id == thread_id,
            ReadCursor.person_kind == "staff",
            ReadCursor.person_id == bindparam("staff_id"),
        )
        .scalar_subquery()
    )


def _unread() -> ColumnElement[bool]:
    return Thread.last_message_id > func.coalesce(_my_cursor(Thread.id), 0)


def _pet_names(dialect: str) -> ColumnElement[str]:
    """A correlated "Bella, Max" for the thread's family, in one SQL for either database."""
    if dialect == "postgresql":
        aggregate = func.string_agg(Pet.name, ", ")
    else:
        aggregate = func.group_concat(Pet.name, ", ")
    return select(aggregate).where(Pet.family_id == Thread.family_id).correlate(Thread).scalar_subquery()


@cache
def _inbox_query(dialect: str) -> Select[tuple[Any, ...]]:
    last = aliased(Message)
    author_staff = aliased(Staff)
    author_contact = aliased(Contact)
    return (
        select(
            Thread.id,
            Thread.family_id,
            Family.name,
            _pet_names(dialect),
            Thread.last_message_at,
            func.substr(last.body, 1, PREVIEW_CHARS),
            author_label(last, author_staff, author_contact),
            Thread.message_count,
            _unread(),
        )
        .join(Family, Family.id == Thread.family_id)
        .join(last, last.id == Thread.last_message_id)
        .outerjoin(author_staff, author_staff.id == last.staff_id)
        .outerjoin(author_contact, author_contact.id == last.contact_id)
        # NOT NULL lets the index skip threads without messages (PostgreSQL sorts NULLs first).
        .where(Thread.business_id == bindparam("business_id"), Thread.last_message_at.is_not(None))
        .order_by(Thread.last_message_at.desc(), Thread.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


def inbox(session: Session, staff: Staff, *, limit: int = 50, offset: int = 0) -> list[ThreadSummary]:
    """Rule 6: the business's threads with messages, newest activity first, unread per me.

    One query: threads, family, latest message and its author, pets and my cursor.
    """
    if not staff.is_senior:
        raise AccessDenied("basic staff have no inbox")
    query = _inbox_query(session.get_bind().dialect.name)
    params = {"business_id": staff.business_id, "staff_id": staff.id, "limit": limit, "offset": offset}
    return [
        ThreadSummary(
            thread_id=row[0],
            family_id=row[1],
            family_name=row[2],
            pet_names=row[3] or "",
            last_message_at=_aware(row[4]),
            last_message_preview=(row[5] or "").split("\n", 1)[0],
            last_author_name=row[6],
            message_count=row[7],
            unread=bool(row[8]),
        )
        for row in session.execute(query, params)
    ]


def has_unread(session: Session, staff: Staff, now: datetime) -> bool:
    """The tab dot: is any thread this person may see unread for them?"""
    params: dict[str, Any] = {"business_id": staff.business_id, "staff_id": staff.id}
    if staff.is_senior:
        return bool(session.scalar(_senior_dot_query(), params))
    family_ids = [f.id for f in families_for_staff(session, staff, business_today(staff.business, now))]
    if not family_ids:
        return False
    return bool(session.scalar(_basic_dot_query(), {**params, "family_ids": family_ids}))


@cache
def _basic_dot_query() -> Select[tuple[bool]]:
    """Unread among the few threads of the families the person is scheduled with today."""
    return select(
        exists().where(
            Thread.business_id == bindparam("business_id"),
            Thread.family_id.in_(bindparam("family_ids", expanding=True)),
            Thread.last_message_id.is_not(None),
            _unread(),
        )
    )


@cache
def _senior_dot_query() -> Select[tuple[bool]]:
    """Unread among the most recent threads, else anywhere (only evaluated when needed).

    New messages land in the most recently active threads, so a few index probes usually
    answer. Otherwise, e.g. when everything is read, every thread must be looked at and the
    plan has to stay linear and cheap: the person's cursors are read once (index-only) and
    hashed, and the threads scanned against them; an index probe per thread costs several
    times more at 10,000 threads.
    """
    recent = (
        select(Thread.id, Thread.last_message_id)
        .where(Thread.business_id == bindparam("business_id"), Thread.last_message_at.is_not(None))
        .order_by(Thread.last_message_at.desc())
        .limit(RECENT_THREADS)
        .subquery()
    )
    recent_unread = exists().where(recent.c.last_message_id > func.coalesce(_my_cursor(recent.c.id), 0))
    mine = (
        select(ReadCursor.thread_id, ReadCursor.message_id)
        .where(ReadCursor.person_kind == "staff", ReadCursor.person_id == bindparam("staff_id"))
        .cte("my_cursors")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    any_unread = exists(
        select(Thread.id)
        .outerjoin(mine, mine.c.thread_id == Thread.id)
        .where(
            Thread.business_id == bindparam("business_id"),
            Thread.last_message_id.is_not(None),
            Thread.last_message_id > func.coalesce(mine.c.message_id, 0),
        )
    )
    return select(or_(recent_unread, any_unread))


def unread_thread_ids(session: Session, staff: Staff, thread_ids: list[int]) -> set[int]:
    """Which of these threads are unread for the staff member (for live dot updates)."""
    if not thread_ids:
        return set()
    query = select(Thread.id).where(Thread.business_id == staff.business_id, Thread.id.in_(thread_ids), _unread())
    return set(session.scalars(query, {"staff_id": staff.id}))


def _aware(value: datetime | None) -> datetime | None:
    """Raw column values skip the UTC type on some paths; make them aware like the rest."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
