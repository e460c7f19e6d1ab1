"""A thread's messages as a page shows them: plain rows, one statement per page.

Every thread view and every live refresh reads 50 messages with their authors and
attachments. Loading them as ORM objects (message, author, attachment identities and
state) cost more Python than the rest of the request, so these are Core queries built
once, whose rows go straight into small frozen records. The page's messages are a limited
subquery, outer-joined to their attachments: a message with three files comes as three
rows, one without any as one row with empty attachment columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Integer, Row, Select, bindparam, func, select, tuple_
from sqlalchemy.orm import Session

from threads.limits import MAX_VISIBLE_TEXT
from threads.models import Attachment, Contact, Message, Staff
from threads.posting import author_label, parent_visible


@dataclass(frozen=True)
class AttachmentRow:
    id: int
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class MessageRow:
    """One message with its author's name and its attachments (oldest first)."""

    id: int
    author_type: str
    author_name: str
    staff_id: int | None
    contact_id: int | None
    source: str
    created_at: datetime
    body: str
    trimmed: str | None
    html: str | None
    # Cut at MAX_VISIBLE_TEXT when posted, or (older messages) when read here: a page never
    # carries megabytes of one message. The whole email stays with its inbound email.
    truncated: bool
    attachments: tuple[AttachmentRow, ...]
    internal: bool = False  # a staff-only note (rule 8)


def thread_page(session: Session, thread_id: int, *, before_id: int | None = None, limit: int = 50) -> list[MessageRow]:
    """The newest `limit` messages (older than `before_id` when paging back), oldest first."""
    return _rows(session.execute(_newest(), {"thread_id": thread_id, "before_id": _bound(before_id), "limit": limit}))


# What a parent page shows: staff's, the business's and parents' messages (never system
# notes, nor any staff-only kind added later: this is a list of what may be shown, not of
# what may not).
PARENT_VISIBLE_KINDS = ("staff", "business", "contact")


def parent_thread_page(session: Session, thread_id: int, *, before_id: int | None = None, limit: int = 30) -> list[MessageRow]:
    """Like `thread_page`, only the messages parents may see (rule 8)."""
    return _rows(session.execute(_parent_newest(), {"thread_id": thread_id, "before_id": _bound(before_id), "limit": limit}))


def messages_after(session: Session, thread_id: int, after_id: int, *, limit: int = 100) -> list[MessageRow]:
    """Messages newer than `after_id`, oldest first (the live refresh of an open thread)."""
    return _rows(session.execute(_after(), {"thread_id": thread_id, "after_id": min(after_id, LAST_ID), "limit": limit}))


# Message ids are 32-bit: "before the last possible id" is "no bound", and a larger bound
# from a URL means the same.
LAST_ID = 2**31 - 1


def _bound(before_id: int | None) -> int:
    return LAST_ID if before_id is None else min(before_id, LAST_ID)


def _rows(result: Iterable[Row[Any]]) -> list[MessageRow]:
    """Rows of `with_attachments` (by message id, then attachment id) as one record a message."""
    messages: list[MessageRow] = []
    current: Row[Any] | None = None
    files: list[AttachmentRow] = []
    for row in result:
        if current is None or row[0] != current[0]:
            if current is not None:
                messages.append(_row(current, tuple(files)))
            current, files = row, []
        if row[-4] is not None:
            files.append(AttachmentRow(*row[-4:]))
    if current is not None:
        messages.append(_row(current, tuple(files)))
    return messages


def _row(row, attachments: tuple[AttachmentRow, ...]) -> MessageRow:  # type: ignore[no-untyped-def]
    *columns, body, trimmed, html, truncated, internal = row[:-4]
    long_body, long_trimmed = len(body) > MAX_VISIBLE_TEXT, trimmed is not None and len(trimmed) > MAX_VISIBLE_TEXT
    return MessageRow(
        *columns,
        body=body[:MAX_VISIBLE_TEXT] if long_body else body,
        trimmed=trimmed[:MAX_VISIBLE_TEXT] if long_trimmed else trimmed,
        html=html,
        truncated=bool(truncated) or long_body or long_trimmed,
        attachments=attachments,
        internal=bool(internal),
    )


def _columns() -> Select:  # type: ignore[type-arg]
    return (
        select(
            Message.id, Message.author_type, author_label().label("author_name"), Message.staff_id, Message.contact_id,
            Message.source, Message.created_at,
            # One character more than is shown tells a longer text from one that fits.
            func.substr(Message.body, 1, MAX_VISIBLE_TEXT + 1).label("body"),
            func.substr(Message.trimmed, 1, MAX_VISIBLE_TEXT + 1).label("trimmed"),
            Message.html, Message.truncated, Message.internal,
        )
        .outerjoin(Staff, Staff.id == Message.staff_id)
        .outerjoin(Contact, Contact.id == Message.contact_id)
        .limit(bindparam("limit"))
    )


def with_attachments(page: Select) -> Select:  # type: ignore[type-arg]
    """The limited page of messages with their attachments' columns (`attachment_id`,
    `filename`, `content_type`, `size`, last), oldest message first."""
    messages = page.subquery("page")
    return (
        select(messages, Attachment.id.label("attachment_id"), Attachment.filename, Attachment.content_type, Attachment.size)
        .outerjoin(Attachment, Attachment.message_id == messages.c.id)
        .order_by(messages.c.id, Attachment.id)
    )


# A page's range is said as a range of index (thread_id, id) and ordered by it:
# "(thread_id, id) < (:thread, :before) AND thread_id >= :thread", not "thread_id = :thread
# AND id < :before ORDER BY id". With the equality, PostgreSQL may walk the primary key and
# filter by thread when its statistics expect the thread to be long: paging back to the
# start of the seeded set's longest thread read 331,776 other messages (205 ms). Without
# it, only that index gives the order, and the scan starts at the bound.
def _newest_first(page: Select) -> Select:  # type: ignore[type-arg]
    return page.where(
        tuple_(Message.thread_id, Message.id) < tuple_(bindparam("thread_id", type_=Integer), bindparam("before_id", type_=Integer)),
        Message.thread_id >= bindparam("thread_id", type_=Integer),
    ).order_by(Message.thread_id.desc(), Message.id.desc())


@cache
def _newest() -> Select:  # type: ignore[type-arg]
    return with_attachments(_newest_first(_columns()))


@cache
def _parent_newest() -> Select:  # type: ignore[type-arg]
    return with_attachments(_newest_first(_columns().where(Message.author_type.in_(PARENT_VISIBLE_KINDS), parent_visible())))


def oldest_after(page: Select) -> Select:  # type: ignore[type-arg]
    """`page` narrowed to the messages of `thread_id` after `after_id`, oldest first (the same
    range of index (thread_id, id) as `_newest_first`, the other way)."""
    return page.where(
        tuple_(Message.thread_id, Message.id) > tuple_(bindparam("thread_id", type_=Integer), bindparam("after_id", type_=Integer)),
        Message.thread_id <= bindparam("thread_id", type_=Integer),
    ).order_by(Message.thread_id, Message.id)


@cache
def _after() -> Select:  # type: ignore[type-arg]
    return with_attachments(oldest_after(_columns()))
