"""Conversations over the API: threads by newest activity, a thread's messages (attachments
as signed links), and posting as a named staff member or as the business itself, with
attachments (multipart).

A post as the business carries the business's name as its author (author kind `business`):
parents see it like any team message, staff see it marked "as the business", nobody's read
cursor moves (it is unread for every staff member).

A posted message goes through `threads.posting.post_message` and, after the commit,
`outbound.notify.message_posted`: exactly what a portal post does, so parents' digests,
staff alerts and open tabs follow it the same way.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache
from typing import Any

from flask import request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Select, bindparam, case, exists, func, or_, select, tuple_

from outbound.links import attachment_url
from outbound.notify import message_posted
from portal.api import ApiProblem, ListQuery, after_commit, api_key, decode_cursor, encode_cursor, operation
from portal.runtime import db, now, settings
from portal.threads import MAX_FILES, _attachment
from threads.directory import normalise_email
from threads.errors import EmptyMessage
from threads.models import Business, Contact, Family, Message, Staff, Thread
from threads.pages import oldest_after, with_attachments
from threads.posting import author_label, post_message

logger = logging.getLogger(__name__)


class ThreadRecord(BaseModel):
    id: int
    family_id: str = Field(description="The family's id in the business's own software (external id)")
    family_name: str
    active: bool
    last_message_at: datetime | None
    message_count: int


class ThreadPage(BaseModel):
    data: list[ThreadRecord]
    next_cursor: str | None


class AttachmentLink(BaseModel):
    filename: str
    content_type: str
    size: int
    url: str = Field(description="A signed link, valid for a limited time, that needs no key")


class Author(BaseModel):
    kind: str = Field(description="staff, contact, business (posted as the business, under its name) or system")
    name: str
    id: str | None = Field(description="The staff member's or contact's external id, when known")


class MessageRecord(BaseModel):
    id: int
    thread_id: int
    author: Author
    text: str
    source: str = Field(description="Where it was written: email, portal, web (the family's page), api (through this API) or system")
    created_at: datetime
    attachments: list[AttachmentLink]


class MessagePage(BaseModel):
    data: list[MessageRecord]
    next_cursor: str | None


class NewMessage(BaseModel):
    """Who posts — a staff member (email or external id), or the business itself with
    `as_business` — and what; files come as multipart `files` parts."""

    model_config = ConfigDict(extra="forbid")
    staff: str | None = Field(default=None, min_length=1, max_length=320, description="The posting staff member's email or external id")
    as_business: bool = Field(default=False, description="Post under the business's own name instead of a staff member's (give no `staff`)")
    text: str = Field(default="", max_length=100_000)

    @model_validator(mode="after")
    def one_author(self) -> NewMessage:
        if (self.staff is None) != self.as_business:
            raise ValueError("give either `staff` or `as_business: true`")
        return self


def _thread(thread_id: str) -> Thread:
    """A thread of the key's business; any other id is not found."""
    found = db().scalar(select(Thread).where(Thread.id == int(thread_id), Thread.business_id == api_key().business_id)) if thread_id.isascii() and thread_id.isdigit() and len(thread_id) <= 9 else None
    if found is None:
        raise ApiProblem(404, "not-found", "No such thread", f"no thread {thread_id[:40]!r}")
    return found


class ThreadListQuery(ListQuery):
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,16}(\.[0-9]{1,9})?$", description="`next_cursor` of the previous page")


def _activity() -> Any:
    """A thread's place in the list: its newest message, and 0 for a family nobody has
    written to yet (listed last, so software can find a new family's thread to post first)."""
    return func.coalesce(Thread.last_message_id, 0)


@operation(
    "GET", "/threads", scope="messages:read",
    summary="List threads, newest activity first; threads without messages yet come last",
    response=ThreadPage, query=ThreadListQuery,
)
def list_threads(query: ThreadListQuery) -> dict[str, Any]:
    statement = (
        select(Thread, Family)
        .join(Family, Family.id == Thread.family_id)
        .where(Thread.business_id == api_key().business_id)
        .order_by(_activity().desc(), Thread.id.desc())
        .limit(query.limit + 1)
    )
    if query.cursor:
        activity, _, thread_id = query.cursor.partition(".")
        # A cursor without a thread id (the older form) is "before this message".
        statement = statement.where(tuple_(_activity(), Thread.id) < tuple_(int(activity), int(thread_id or 0)))
    rows = db().execute(statement).all()
    page = rows[: query.limit]
    data = [
        {"id": t.id, "family_id": f.external_id, "family_name": f.name, "active": t.active, "last_message_at": t.last_message_at, "message_count": t.message_count}
        for t, f in page
    ]
    last = page[-1][0] if page else None
    more = last is not None and len(rows) > query.limit
    return {"data": data, "next_cursor": f"{last.last_message_id or 0}.{last.id}" if more else None}


def _message_record(message: Message) -> dict[str, Any]:
    author_id = message.staff.external_id if message.staff else message.contact.external_id if message.contact else None
    return {
        "id": message.id,
        "thread_id": message.thread_id,
        "author": {"kind": message.author_type, "name": message.author_name, "id": author_id},
        "text": message.body,
        "source": message.source,
        "created_at": message.created_at,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size, "url": attachment_url(settings(), a.id, now=now())}
            for a in message.attachments
        ],
    }


@operation(
    "GET", "/threads/{thread_id}/messages", scope="messages:read", summary="Read a thread's messages, oldest first",
    response=MessagePage, query=ListQuery, problems=(404,),
)
def list_messages(thread_id: str, query: ListQuery) -> dict[str, Any]:
    """One statement: the page's messages with their authors and attachments, scoped to the
    key's business; an empty page asks whether the thread is there at all (404 if not)."""
    known = thread_id.isascii() and thread_id.isdigit() and len(thread_id) <= 9
    params = {"thread_id": int(thread_id) if known else 0, "business_id": api_key().business_id, "after_id": decode_cursor(query.cursor), "limit": query.limit + 1}
    records: list[dict[str, Any]] = []
    moment = now()
    for row in db().execute(_messages_page(), params) if known else ():
        if not records or records[-1]["id"] != row.id:
            records.append({
                "id": row.id, "thread_id": row.thread_id,
                "author": {"kind": row.author_type, "name": row.author_name, "id": row.author_id},
                "text": row.body, "source": row.source, "created_at": row.created_at, "attachments": [],
            })
        if row.attachment_id is not None:
            records[-1]["attachments"].append({
                "filename": row.filename, "content_type": row.content_type, "size": row.size,
                "url": attachment_url(settings(), row.attachment_id, now=moment),
            })
    if not records:
        _thread(thread_id)  # 404 unless the thread is the key's business's
    page = records[: query.limit]
    return {"data": page, "next_cursor": encode_cursor(page[-1]["id"]) if len(records) > query.limit else None}


@cache
def _messages_page() -> Select:  # type: ignore[type-arg]
    """`limit` messages after `after_id` (the thread's only if it is the business's), oldest
    first, outer-joined to their attachments (`threads.pages`' range and join). The business
    check is an uncorrelated EXISTS (evaluated once), so the messages still come in index
    order, `limit` rows read."""
    ours = exists().where(Thread.id == bindparam("thread_id"), Thread.business_id == bindparam("business_id"))
    messages = (
        select(
            Message.id, Message.thread_id, Message.author_type, author_label().label("author_name"),
            case((Staff.id.is_not(None), Staff.external_id), else_=Contact.external_id).label("author_id"),
            Message.body, Message.source, Message.created_at,
        )
        .outerjoin(Staff, Staff.id == Message.staff_id)
        .outerjoin(Contact, Contact.id == Message.contact_id)
        .where(ours)
        .limit(bindparam("limit"))
    )
    return with_attachments(oldest_after(messages))


@operation(
    "POST", "/threads/{thread_id}/messages", scope="messages:write", summary="Post a message as a named staff member or as the business",
    response=MessageRecord, status=201, body=NewMessage, multipart=True, problems=(404, 413, 415),
)
def create_message(thread_id: str, body: NewMessage) -> dict[str, Any]:
    thread = _thread(thread_id)
    author = db().get(Business, api_key().business_id) if body.as_business else _staff_author(body.staff or "")
    files = [_attachment(f) for f in request.files.getlist("files")[:MAX_FILES] if f and f.filename]
    try:
        message = post_message(db(), thread, author, body.text, files, source="api", now=now())
    except EmptyMessage:
        raise ApiProblem(422, "invalid-request", "Invalid request", "write something or attach a file", errors=[{"pointer": "/text", "in": "body", "detail": "needs text or a file"}]) from None
    message_id = message.id
    logger.info("API key %s posted message %s in thread %s as %s", api_key().prefix, message_id, thread.id, f"staff {author.id}" if isinstance(author, Staff) else "the business")
    after_commit(lambda: message_posted(message_id))
    return _message_record(message)


def _staff_author(who: str) -> Staff:
    """An active staff member of the key's business, by email or external id."""
    who = who.strip()
    author = db().scalar(
        select(Staff).where(Staff.business_id == api_key().business_id, Staff.active.is_(True), or_(Staff.email == normalise_email(who), Staff.external_id == who))
    )
    if author is None:
        raise ApiProblem(422, "invalid-request", "Invalid request", "no active staff member answers to that", errors=[{"pointer": "/staff", "in": "body", "detail": "not an active staff member's email or id"}])
    return author
