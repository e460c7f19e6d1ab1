"""What a thread page shows, computed in a few queries: messages, receipts, each parent's state.

Per-parent delivery state comes from the same records outbound works from: the notified
cursor (what they were emailed), the read cursor (moved when they reply by email), the
outbox (when it was sent) and the address's bounce flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from datetime import UTC, datetime

from markupsafe import Markup
from sqlalchemy import CompoundSelect, Select, bindparam, func, literal, select, union_all
from sqlalchemy.orm import Session

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
    """Each contact's delivery state, in three plain-row queries whatever the family's size."""
    addresses: dict[int, list[tuple[str, bool, str | None, datetime | None]]] = {}
    contacts: list[tuple[int, str, bool]] = []
    choices: dict[int, tuple[str, int | None, datetime | None]] = {}
    for contact_id, name, primary, choice, minute, choice_at, email, bouncing, reason, bounced_at in session.execute(
        _contacts(), {"family_id": family.id}
    ):
        if contact_id not in addresses:
            addresses[contact_id] = []
            contacts.append((contact_id, name, primary))
            choices[contact_id] = (choice, minute, _aware(choice_at) if choice_at else None)
        if email is not None:
            addresses[contact_id].append((email, bouncing, reason, _aware(bounced_at) if bounced_at else None))
    read: dict[int, tuple[int, datetime]] = {}
    notified: dict[int, int] = {}
    sent: dict[int, datetime] = {}
    queued: set[int] = set()
    if thread is not None:
        for kind, person_id, message_id, updated_at in session.execute(_cursors(), {"thread_id": thread.id}):
            if kind == "read":
                read[person_id] = (message_id, _aware(updated_at))
            else:
                notified[person_id] = message_id
        for recipient_id, state, sent_at in session.execute(_outbox(), {"thread_id": thread.id}):
            if state == "sent" and sent_at is not None:
                sent[recipient_id] = sent_at
            elif state == "queued":
                queued.add(recipient_id)
    states = []
    for contact_id, name, primary in contacts:
        own = addresses[contact_id]
        bounced = [(reason, at) for _, bouncing, reason, at in own if bouncing]
        read_up_to, read_at = read.get(contact_id, (0, None))
        states.append(
            ParentState(
                contact_id=contact_id,
                name=name,
                primary=primary,
                emails=tuple(email for email, _, _, _ in own),
                bouncing=bool(own) and len(bounced) == len(own),
                bounce_reason=bounced[0][0] if bounced else None,
                bounced_at=bounced[0][1] if bounced else None,
                emailed_at=sent.get(contact_id),
                email_queued=contact_id in queued,
                notified_up_to=notified.get(contact_id, 0),
                read_up_to=read_up_to,
                read_at=read_at if read_up_to else None,
                email_choice=choices[contact_id][0],
                summary_time=f"{choices[contact_id][1] // 60:02d}:{choices[contact_id][1] % 60:02d}" if choices[contact_id][1] is not None else None,
                choice_at=choices[contact_id][2],
            )
        )
    return states


@cache
def _contacts() -> Select:  # type: ignore[type-arg]
    """The family's contacts, primary first, each with its addresses (one row per address)."""
    return (
        select(
            Contact.id, Contact.name, Contact.is_primary,
            Contact.email_choice, Contact.summary_minute, Contact.email_choice_at,
            ContactAddress.email, ContactAddress.bouncing, ContactAddress.bounce_reason, ContactAddress.bounced_at,
        )
        .outerjoin(ContactAddress, ContactAddress.contact_id == Contact.id)
        .where(Contact.family_id == bindparam("family_id"), Contact.removed_at.is_(None))
        .order_by(Contact.is_primary.desc(), Contact.id, ContactAddress.id)
    )


@cache
def _cursors() -> CompoundSelect:
    """Every contact's read and notified cursor on the thread, as (kind, person, message, when)."""
    return union_all(
        *(
            select(literal(kind).label("kind"), model.person_id, model.message_id, model.updated_at).where(
                model.thread_id == bindparam("thread_id"), model.person_kind == "contact"
            )
            for kind, model in (("read", ReadCursor), ("notified", NotifiedCursor))
        )
    )


@cache
def _outbox() -> Select:  # type: ignore[type-arg]
    """Per contact and state, the last time an email of this thread was sent to them."""
    return (
        select(OutboundEmail.recipient_id, OutboundEmail.state, func.max(OutboundEmail.sent_at))
        .where(OutboundEmail.thread_id == bindparam("thread_id"), OutboundEmail.recipient_kind == "contact")
        .group_by(OutboundEmail.recipient_id, OutboundEmail.state)
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
    """Columns read through a UNION lose their UTCDateTime type on SQLite: restore the zone."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _first(name: str) -> str:
    return name.split(" ", 1)[0] if name else name
