"""What a thread page shows, computed in a few queries: messages, receipts, each parent's state.

Per-parent delivery state comes from the same records outbound works from: the notified
cursor (what they were emailed), the read cursor (moved when they reply by email), the
outbox (when it was sent) and the address's bounce flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session, joinedload, selectinload

from portal import timefmt
from portal.sanitize import clean_email_html
from threads.models import Attachment, Contact, Family, Message, NotifiedCursor, OutboundEmail, ReadCursor, Staff, Thread

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
    emailed_at: datetime | None
    email_queued: bool
    notified_up_to: int
    read_up_to: int
    read_at: datetime | None


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
    images: tuple[Attachment, ...]
    files: tuple[Attachment, ...]
    when: timefmt.TimeLabels
    emailed_to: tuple[str, ...] = field(default=())
    read_by: tuple[str, ...] = field(default=())


def parent_states(session: Session, thread: Thread | None, family: Family) -> list[ParentState]:
    """Each contact's delivery state, in three queries whatever the family's size."""
    contacts = session.scalars(
        select(Contact)
        .options(joinedload(Contact.addresses))
        .where(Contact.family_id == family.id)
        .order_by(Contact.is_primary.desc(), Contact.id)
    ).unique().all()
    read: dict[int, tuple[int, datetime]] = {}
    notified: dict[int, int] = {}
    sent: dict[int, datetime] = {}
    queued: set[int] = set()
    if thread is not None:
        cursors = union_all(
            *(
                select(literal(kind).label("kind"), model.person_id, model.message_id, model.updated_at).where(
                    model.thread_id == thread.id, model.person_kind == "contact"
                )
                for kind, model in (("read", ReadCursor), ("notified", NotifiedCursor))
            )
        )
        for kind, person_id, message_id, updated_at in session.execute(cursors):
            if kind == "read":
                read[person_id] = (message_id, _aware(updated_at))
            else:
                notified[person_id] = message_id
        outbox = session.execute(
            select(OutboundEmail.recipient_id, OutboundEmail.state, func.max(OutboundEmail.sent_at))
            .where(OutboundEmail.thread_id == thread.id, OutboundEmail.recipient_kind == "contact")
            .group_by(OutboundEmail.recipient_id, OutboundEmail.state)
        )
        for recipient_id, state, sent_at in outbox:
            if state == "sent" and sent_at is not None:
                sent[recipient_id] = sent_at
            elif state == "queued":
                queued.add(recipient_id)
    states = []
    for contact in contacts:
        bounced = [a for a in contact.addresses if a.bouncing]
        read_up_to, read_at = read.get(contact.id, (0, None))
        states.append(
            ParentState(
                contact_id=contact.id,
                name=contact.name,
                primary=contact.is_primary,
                emails=tuple(a.email for a in contact.addresses),
                bouncing=bool(contact.addresses) and len(bounced) == len(contact.addresses),
                bounce_reason=bounced[0].bounce_reason if bounced else None,
                emailed_at=sent.get(contact.id),
                email_queued=contact.id in queued,
                notified_up_to=notified.get(contact.id, 0),
                read_up_to=read_up_to,
                read_at=read_at if read_up_to else None,
            )
        )
    return states


def message_views(messages: list[Message], me: Staff, parents: list[ParentState], now: datetime) -> list[MessageView]:
    """What the template shows per message; times are formatted here, once per message."""
    zone = ZoneInfo(me.business.timezone)
    views = []
    for message in messages:
        images = tuple(a for a in message.attachments if a.content_type.lower() in THUMBNAIL_TYPES)
        files = tuple(a for a in message.attachments if a not in images)
        receipts: dict[str, tuple[str, ...]] = {}
        if message.author_type == "staff":
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
                when=timefmt.labels(message.created_at, zone, now),
                **receipts,
            )
        )
    return views


def messages_after(session: Session, thread: Thread, after_id: int, limit: int = 100) -> list[Message]:
    """Messages newer than `after_id`, oldest first (the live refresh of an open thread)."""
    query = (
        select(Message)
        .options(selectinload(Message.attachments), selectinload(Message.staff), selectinload(Message.contact))
        .where(Message.thread_id == thread.id, Message.id > after_id)
        .order_by(Message.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def _aware(value: datetime) -> datetime:
    """Columns read through a UNION lose their UTCDateTime type on SQLite: restore the zone."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _first(name: str) -> str:
    return name.split(" ", 1)[0] if name else name
