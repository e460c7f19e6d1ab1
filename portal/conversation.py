"""What a thread page shows, computed in two queries: messages, receipts, each parent's state.

Per-parent delivery state comes from the same records outbound works from: the notified
cursor (what they were emailed), the read cursor (moved when they reply by email), the
outbox (when it was sent) and the address's bounce flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from datetime import UTC, datetime

from markupsafe import Markup
from sqlalchemy import Select, and_, bindparam, case, func, select
from sqlalchemy.orm import Session, aliased

from portal.sanitize import clean_email_html
from threads.models import Contact, ContactAddress, Family, NotifiedCursor, OutboundEmail, ReadCursor, Staff, Thread
from threads.pages import AttachmentRow, MessageRow

# Types a browser shows as a picture without running anything (never SVG: it can hold script).
THUMBNAIL_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


@dataclass(frozen=True)
class ParentState:
    contact_id: int
    name: str
    primary: bool
    emails: tuple[str, ...]
    bouncing: bool
    bounce_reason: str | None
    bounced_at: datetime | None
    emailed_at: datetime | None
    email_queued: bool
    notified_up_to: int
    read_up_to: int
    read_at: datetime | None
    # Rule 7: the contact's own choice ("each", "daily", "paused"), shown on their card.
    email_choice: str = "each"
    summary_time: str | None = None
    choice_at: datetime | None = None


@dataclass(frozen=True)
class MessageView:
    id: int
    kind: str
    author: str
    mine: bool
    source: str
    created_at: datetime
    body: str
    trimmed: str | None
    html: Markup | None
    images: tuple[AttachmentRow, ...]
    files: tuple[AttachmentRow, ...]
    truncated: bool = False  # the portal links the whole email ("show the full email")
    internal: bool = False  # a staff-only note: drawn apart, never with parent receipts
    emailed_to: tuple[str, ...] = field(default=())
    read_by: tuple[str, ...] = field(default=())


def parent_states(session: Session, thread: Thread | None, family: Family) -> list[ParentState]:
    """Each contact's delivery state, in one plain-row query whatever the family's size."""
    return thread_states(session, thread, family)[0]


def thread_states(
    session: Session, thread: Thread | None, family: Family, reader_id: int | None = None
) -> tuple[list[ParentState], int | None]:
    """`parent_states`, and how far staff member `reader_id` has read the thread (0: nothing),
    from the same statement: so a view that shows nothing new need not write their cursor.
    None when that is not known (no reader, or a family without contacts returns no row)."""
    addresses: dict[int, list[tuple[str, bool, str | None, datetime | None]]] = {}
    people: dict[int, tuple] = {}  # type: ignore[type-arg]
    reader_at: int | None = None
    params = {"family_id": family.id, "thread_id": thread.id if thread is not None else None, "staff_id": reader_id}
    for row in session.execute(_states(), params):
        contact_id = row[0]
        if contact_id not in addresses:
            addresses[contact_id] = []
            people[contact_id] = row
        email, bouncing, reason, bounced_at = row[6:10]
        if email is not None:
            addresses[contact_id].append((email, bouncing, reason, _aware(bounced_at) if bounced_at else None))
        if reader_id is not None:
            reader_at = row[15]
    states = []
    for contact_id, row in people.items():
        _, name, primary, choice, minute, choice_at = row[:6]
        read_up_to, read_at, notified_up_to, sent_at, queued = row[10:15]
        own = addresses[contact_id]
        bounced = [(reason, at) for _, bouncing, reason, at in own if bouncing]
        states.append(
            ParentState(
                contact_id=contact_id,
                name=name,
                primary=primary,
                emails=tuple(email for email, _, _, _ in own),
                bouncing=bool(own) and len(bounced) == len(own),
                bounce_reason=bounced[0][0] if bounced else None,
                bounced_at=bounced[0][1] if bounced else None,
                emailed_at=_aware(sent_at) if sent_at else None,
                email_queued=bool(queued),
                notified_up_to=notified_up_to or 0,
                read_up_to=read_up_to or 0,
                read_at=_aware(read_at) if read_up_to and read_at else None,
                email_choice=choice,
                summary_time=f"{minute // 60:02d}:{minute % 60:02d}" if minute is not None else None,
                choice_at=_aware(choice_at) if choice_at else None,
            )
        )
    return states, reader_at


@cache
def _states() -> Select:  # type: ignore[type-arg]
    """The family's contacts, primary first, one row per address, each row with the contact's
    read and notified cursors on the thread (primary-key probes), their outbox on it (one
    grouped read of the thread's emails) and the reader's own cursor."""
    read, notified, mine = aliased(ReadCursor), aliased(NotifiedCursor), aliased(ReadCursor)
    thread_id = bindparam("thread_id")
    sent = case((OutboundEmail.state == "sent", OutboundEmail.sent_at))
    outbox = (
        select(
            OutboundEmail.recipient_id.label("contact_id"),
            func.max(sent).label("sent_at"),
            func.max(case((OutboundEmail.state == "queued", 1), else_=0)).label("queued"),
        )
        .where(OutboundEmail.thread_id == thread_id, OutboundEmail.recipient_kind == "contact")
        .group_by(OutboundEmail.recipient_id)
        .subquery("outbox")
    )
    reader = func.coalesce(
        select(mine.message_id)
        .where(mine.thread_id == thread_id, mine.person_kind == "staff", mine.person_id == bindparam("staff_id"))
        .scalar_subquery(),
        0,
    )
    return (
        select(
            Contact.id, Contact.name, Contact.is_primary,
            Contact.email_choice, Contact.summary_minute, Contact.email_choice_at,
            ContactAddress.email, ContactAddress.bouncing, ContactAddress.bounce_reason, ContactAddress.bounced_at,
            read.message_id, read.updated_at, notified.message_id, outbox.c.sent_at, outbox.c.queued, reader,
        )
        .outerjoin(ContactAddress, ContactAddress.contact_id == Contact.id)
        .outerjoin(read, and_(read.thread_id == thread_id, read.person_kind == "contact", read.person_id == Contact.id))
        .outerjoin(
            notified, and_(notified.thread_id == thread_id, notified.person_kind == "contact", notified.person_id == Contact.id)
        )
        .outerjoin(outbox, outbox.c.contact_id == Contact.id)
        .where(Contact.family_id == bindparam("family_id"), Contact.removed_at.is_(None))
        .order_by(Contact.is_primary.desc(), Contact.id, ContactAddress.id)
    )


def message_views(messages: list[MessageRow], me: Staff, parents: list[ParentState]) -> list[MessageView]:
    views = []
    for message in messages:
        images = tuple(a for a in message.attachments if a.content_type.lower() in THUMBNAIL_TYPES)
        files = tuple(a for a in message.attachments if a not in images)
        receipts: dict[str, tuple[str, ...]] = {}
        if message.author_type in ("staff", "business") and not message.internal:
            receipts = {
                "emailed_to": tuple(_first(p.name) for p in parents if p.notified_up_to >= message.id),
                "read_by": tuple(_first(p.name) for p in parents if p.read_up_to >= message.id),
            }
        views.append(
            MessageView(
                id=message.id,
                kind=message.author_type,
                author=message.author_name,
                mine=message.staff_id == me.id,
                source=message.source,
                created_at=message.created_at,
                body=message.body,
                trimmed=message.trimmed,
                html=clean_email_html(message.html) if message.html else None,
                images=images,
                files=files,
                truncated=message.truncated,
                internal=message.internal,
                **receipts,
            )
        )
    return views


def _aware(value: datetime) -> datetime:
    """Aggregates and CASE may lose their UTCDateTime type on SQLite: restore the zone."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _first(name: str) -> str:
    return name.split(" ", 1)[0] if name else name
