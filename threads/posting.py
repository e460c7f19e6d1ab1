"""Posting: a message enters a thread, and the thread and its poster's cursor follow."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from threads.cursors import advance_cursor
from threads.webhooks import message_created
from threads.errors import EmptyMessage
from threads.models import Attachment, Contact, Message, ReadCursor, Staff, Thread
from threads.types import UTCDateTime, utcnow


@dataclass(frozen=True)
class NewAttachment:
    """A file arriving with a message, from the portal or an email."""

    filename: str
    content_type: str
    content: bytes
    content_id: str | None = None
    inline: bool = False


Author = Staff | Contact | None


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
    now: datetime | None = None,
) -> Message:
    """Add a message to `thread` (rule 2: the poster has read what they posted).

    `author` None means a system note. Access is the caller's check; this function only
    records. The caller commits.
    """
    files = list(attachments)
    body = body.strip("\n\r ")
    if not body and not files:
        raise EmptyMessage("a message needs text or an attachment")
    if author is None:
        author_type, source = "system", "system"
    else:
        author_type = "staff" if isinstance(author, Staff) else "contact"
    message = Message(
        thread_id=thread.id,
        author_type=author_type,
        staff_id=author.id if isinstance(author, Staff) else None,
        contact_id=author.id if isinstance(author, Contact) else None,
        body=body,
        trimmed=trimmed or None,
        html=html,
        source=source,
        email_message_id=email_message_id,
        truncated=truncated,
        created_at=now or utcnow(),
        attachments=[
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
        ],
    )
    session.add(message)
    session.flush()
    # SQL expressions, not Python values: two posters committing in either order leave
    # the thread pointing at the newest message and counting both.
    newer = func.coalesce(Thread.last_message_id, 0) > message.id
    thread.last_message_id = case((newer, Thread.last_message_id), else_=message.id)
    thread.last_message_at = case((newer, Thread.last_message_at), else_=literal(message.created_at, UTCDateTime()))
    thread.message_count = Thread.message_count + 1
    if author is not None:
        advance_cursor(session, ReadCursor, thread.id, author.person, message.id)
        # In this transaction: the business's software hears of exactly the committed messages.
        message_created(session, message, message.created_at)
    session.flush()
    return message


def message_by_email_id(session: Session, thread: Thread, email_message_id: str) -> Message | None:
    """The message this email already became, for posting each Message-ID once."""
    return session.scalar(
        select(Message).where(Message.thread_id == thread.id, Message.email_message_id == email_message_id)
    )
