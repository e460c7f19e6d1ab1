"""Posting: a message enters a thread, and the thread and its poster's cursor follow."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Insert, Integer, Select, Update, UpdateBase, bindparam, case, false, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, aliased, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import AliasedClass

from threads.cursors import advance_cursor, forward_only
from threads.errors import AccessDenied, EmptyMessage
from threads.webhooks import message_created
from threads.models import Attachment, Business, Contact, Message, Person, ReadCursor, Staff, Thread
from threads.types import UTCDateTime, utcnow


@dataclass(frozen=True)
class Alongside:
    """A write the caller makes with a post, given the new message's id as SQL (`build`, a
    module-level function: its statement is built once). On PostgreSQL it is a CTE of the
    post's own statement, one round trip less; elsewhere a statement of its own right after.
    `parameters` are its bind parameters, named apart from the post's (`new_*`, `cursor_*`)."""

    build: Callable[[ColumnElement[int]], UpdateBase]
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class NewAttachment:
    """A file arriving with a message, from the portal or an email."""

    filename: str
    content_type: str
    content: bytes
    content_id: str | None = None
    inline: bool = False


# A staff member, a contact, the business itself (its software posting under its name), or
# None: a system note.
Author = Staff | Contact | Business | None

_Query = TypeVar("_Query", bound=Select[Any])


def parent_visible(message: type[Message] | AliasedClass[Message] = Message) -> ColumnElement[bool]:
    """Rule 8 as a condition: the message is not an internal note (pass an alias if the
    query reads messages through one)."""
    return message.internal == false()


def author_label(
    message: type[Message] | AliasedClass[Message] = Message,
    staff: type[Staff] | AliasedClass[Staff] = Staff,
    contact: type[Contact] | AliasedClass[Contact] = Contact,
) -> ColumnElement[str]:
    """The author's name in SQL, as `Message.author_name` says it: the business's name for a
    post as the business (looked up only for those rows), else the staff member's or the
    contact's, else "Pawpost". The query must outer-join `staff` and `contact`."""
    own_thread = aliased(Thread)
    business_name = (
        select(Business.name)
        .join(own_thread, own_thread.business_id == Business.id)
        .where(own_thread.id == message.thread_id)
        .correlate_except(Business, own_thread)
        .scalar_subquery()
    )
    return case((message.author_type == "business", business_name), else_=func.coalesce(staff.name, contact.name, literal("Pawpost")))


def visible_to_parents(query: _Query) -> _Query:
    """`query` (selecting from `messages`) without internal notes: every parent-facing read
    — digests, parent pages, the parent API, a parent's unread count — goes through this."""
    return query.where(parent_visible())


def post_message(
    session: Session,
    thread: Thread,
    author: Author,
    body: str,
    attachments: Iterable[NewAttachment] = (),
    *,
    source: str = "portal",
    trimmed: str | None = None,
    html: str | None = None,
    email_message_id: str | None = None,
    truncated: bool = False,
    internal: bool = False,
    now: datetime | None = None,
    alerted_at: datetime | None = None,
    webhooks: bool = True,
    alongside: Alongside | None = None,
) -> Message:
    """Add a message to `thread` (rule 2: the poster has read what they posted).

    `author` None means a system note; a `Business` posts as the business (under its name,
    notifying like a staff post; nobody's cursor moves). Access is the caller's check; this
    function only records. The caller commits. `internal` makes a staff-only note (rule 8): only staff write them.
    `alerted_at`: the caller already knows its staff alerts are decided (the email ingest,
    when nobody is scheduled with the family), so no second statement has to record it.
    `webhooks` False: the caller read, in this transaction, that the business has no active
    webhook endpoint, so no `message.created` endpoint is looked for. `alongside`: a write
    of the caller's that needs the new message's id, made in the same round trip.
    """
    if internal and not isinstance(author, Staff):
        raise AccessDenied("only staff write internal notes")
    files = list(attachments)
    body = body.strip("\n\r ")
    if not body and not files:
        raise EmptyMessage("a message needs text or an attachment")
    if author is None:
        author_type, source = "system", "system"
    elif isinstance(author, Business):
        if author.id != thread.business_id:
            raise AccessDenied("a business posts only in its own threads")
        author_type = "business"
    else:
        author_type = "staff" if isinstance(author, Staff) else "contact"
    if thread.id is None or (author is not None and author.id is None):
        session.flush()  # a thread or author the caller has just added gets its id first
    columns = {
        "thread_id": thread.id,
        "author_type": author_type,
        "staff_id": author.id if isinstance(author, Staff) else None,
        "contact_id": author.id if isinstance(author, Contact) else None,
        "body": body,
        "trimmed": trimmed or None,
        "html": html,
        "source": source,
        "email_message_id": email_message_id,
        "truncated": truncated,
        "internal": internal,
        "created_at": now or utcnow(),
        "escalated_at": None,
        "alerted_at": alerted_at,
    }
    person = author.person if isinstance(author, Staff | Contact) else None
    # PostgreSQL: the INSERT, the thread's UPDATE and the poster's cursor in one statement.
    one_statement = session.get_bind().dialect.name == "postgresql"
    message = _inserted_message(session, columns, person if one_statement else None, moved=one_statement, alongside=alongside)
    # The author itself too: whoever reads `message.contact` next (the alerts) needs no query.
    set_committed_value(message, "staff", author if isinstance(author, Staff) else None)
    set_committed_value(message, "contact", author if isinstance(author, Contact) else None)
    set_committed_value(message, "attachments", [])
    message.attachments.extend(  # written by the unit of work (only messages with files have any)
        Attachment(
            filename=f.filename,
            content_type=f.content_type,
            size=len(f.content),
            sha256=hashlib.sha256(f.content).hexdigest(),
            content=f.content,
            content_id=f.content_id,
            inline=f.inline,
        )
        for f in files
    )
    if files:
        session.flush()  # their ids are in the `message.created` event below
    if not one_statement:
        # One UPDATE, straight on the connection: the unit of work's second flush cost more
        # CPU than the statement.
        session.connection().execute(
            _thread_posted_statement(), {"thread_id": thread.id, "message_id": message.id, "posted_at": message.created_at}
        )
        if person is not None:
            advance_cursor(session, ReadCursor, thread.id, person, message.id)
        if alongside is not None:
            session.connection().execute(
                _alongside_statement(alongside.build), {**alongside.parameters, "alongside_message_id": message.id}
            )
    session.expire(thread, ["last_message_id", "last_message_at", "message_count"])  # read again when next used
    if author is not None and webhooks:
        # In this transaction: the business's software hears of exactly the committed messages.
        message_created(session, message, message.created_at)
    session.flush()
    return message


def _inserted_message(
    session: Session, columns: dict[str, Any], person: Person | None = None, *, moved: bool = False, alongside: Alongside | None = None
) -> Message:
    """INSERT the message on the session's connection and hand back its ORM object, persistent
    in the session as if just loaded: every message's unit-of-work flush (its dependency
    sorting, relationship syncing and bulk-insert path) cost ~3x the CPU of the statement.

    `moved` (PostgreSQL): the same statement also moves the thread to the message and, for
    a `person`, their read cursor, and makes the caller's `alongside` write
    (`_post_statement`): one round trip and one statement's overhead instead of three or four."""
    if moved:
        # Named apart from every column: an UPDATE or INSERT given a parameter named like
        # one of its table's columns writes that column too (SQLAlchemy's "extra SET").
        parameters = {f"new_{name}": value for name, value in columns.items()}
        if person is not None:
            parameters.update(cursor_kind=person.kind, cursor_person_id=person.id, cursor_updated_at=utcnow())
        if alongside is not None:
            parameters.update(alongside.parameters)
        statement = _post_statement(person is not None, alongside.build if alongside is not None else None)
    else:
        parameters, statement = columns, _insert_message_statement()
    message_id = session.connection().execute(statement, parameters).scalar_one()
    message = Message(id=message_id, **columns)
    make_transient_to_detached(message)
    session.add(message)
    return message


@cache
def _insert_message_statement() -> Insert:
    return insert(Message).returning(Message.id)


@cache
def _alongside_statement(build: Callable[[ColumnElement[int]], UpdateBase]) -> UpdateBase:
    return build(bindparam("alongside_message_id", type_=Integer))


@cache
def _post_statement(
    moves_cursor: bool, alongside: Callable[[ColumnElement[int]], UpdateBase] | None = None
) -> Select[tuple[int]]:
    """PostgreSQL's whole post, built once: the INSERT of the message, and in data-modifying
    CTEs of the same statement the thread's UPDATE (`_thread_posted_statement`'s, reading
    the new id from the INSERT's RETURNING) and, `moves_cursor`, the poster's read-cursor
    upsert (`threads.cursors.forward_only`), and the caller's `alongside` write (reading the
    id from a scalar subquery of the INSERT's CTE). They run as the separate statements did,
    in the caller's transaction, taking the same row locks."""
    table = Message.__table__
    posted = (
        insert(Message)
        .values({name: bindparam(f"new_{name}", type_=table.c[name].type) for name in _POSTED_COLUMNS})
        .returning(Message.id, Message.thread_id, Message.created_at)
        .cte("posted")
    )
    newer = func.coalesce(Thread.last_message_id, 0) > posted.c.id
    thread_moved = (
        update(Thread)
        .where(Thread.id == posted.c.thread_id)
        .values(
            last_message_id=case((newer, Thread.last_message_id), else_=posted.c.id),
            last_message_at=case((newer, Thread.last_message_at), else_=posted.c.created_at),
            message_count=Thread.message_count + 1,
        )
        .cte("thread_moved")
    )
    ctes = [thread_moved]
    if moves_cursor:
        rows = select(
            posted.c.thread_id,
            bindparam("cursor_kind", type_=ReadCursor.person_kind.type),
            bindparam("cursor_person_id", type_=Integer),
            posted.c.id,
            bindparam("cursor_updated_at", type_=UTCDateTime()),
        )
        moved = postgresql.insert(ReadCursor).from_select(["thread_id", "person_kind", "person_id", "message_id", "updated_at"], rows)
        ctes.append(forward_only(moved, ReadCursor).cte("cursor_moved"))
    if alongside is not None:
        ctes.append(alongside(select(posted.c.id).scalar_subquery()).cte("alongside"))
    return select(posted.c.id).add_cte(*ctes)


_POSTED_COLUMNS = (
    "thread_id", "author_type", "staff_id", "contact_id", "body", "trimmed", "html", "source",
    "email_message_id", "truncated", "internal", "created_at", "escalated_at", "alerted_at",
)


@cache
def _thread_posted_statement() -> Update:
    """SQL expressions, not Python values: two posters committing in either order leave
    the thread pointing at the newest message and counting both."""
    message_id = bindparam("message_id", type_=Integer)
    newer = func.coalesce(Thread.last_message_id, 0) > message_id
    return (
        update(Thread)
        .where(Thread.id == bindparam("thread_id"))
        .values(
            last_message_id=case((newer, Thread.last_message_id), else_=message_id),
            last_message_at=case((newer, Thread.last_message_at), else_=bindparam("posted_at", type_=UTCDateTime())),
            message_count=Thread.message_count + 1,
        )
    )


def message_by_email_id(session: Session, thread: Thread, email_message_id: str) -> Message | None:
    """The message this email already became, for posting each Message-ID once."""
    return session.scalar(
        select(Message).where(Message.thread_id == thread.id, Message.email_message_id == email_message_id)
    )
