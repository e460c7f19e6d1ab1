"""Parent links: which contact a signed link speaks for, and whether it still may.

A parent link is signed (outbound.links) over the contact's id and a key derived from
their `parent_links.secret` and the thread's current reply token. So a link stops working
when the contact is removed (the row goes with them), when their secret is renewed
(`revoke_parent_links`), and when the family's reply address is rotated (a leak of one
is treated as a leak of the other). A link lasts 30 days after the later of its signing
and the contact's last use of a link; a use is written down at most once an hour
(`LINK_USE_GRANULARITY`), so a link may end up to an hour early, never late.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, contains_eager

from threads.models import Contact, Family, ParentLink, ReadCursor, Thread

LINK_LIFETIME = timedelta(days=30)
UNSUBSCRIBE_LIFETIME = timedelta(days=365)
# How stale the noted last use may get before a use writes it again: one write an hour per
# contact, not one per page view.
LINK_USE_GRANULARITY = timedelta(hours=1)


@dataclass(frozen=True)
class ParentAccess:
    """Who a valid link speaks for: one contact, in their own family's thread."""

    contact: Contact
    family: Family
    thread: Thread
    # Read with the link, so a view writes only what changed: when a use was last noted
    # (None: never) and how far the contact has read the thread (0: nothing).
    used_at: datetime | None = None
    read_up_to: int = 0


def link_key(secret: str, reply_token: str) -> str:
    """What a link carries: changes with the contact's secret and the thread's reply token."""
    return hmac.new(secret.encode(), f"parent-link:{reply_token}".encode(), hashlib.sha256).hexdigest()[:32]


def link_secrets(session: Session, contact_ids: Iterable[int], now: datetime) -> dict[int, str]:
    """Each contact's link secret, made on first need (one read, one multi-row insert)."""
    wanted = sorted(set(contact_ids))
    if not wanted:
        return {}
    found = dict(session.execute(select(ParentLink.contact_id, ParentLink.secret).where(ParentLink.contact_id.in_(wanted))).all())
    fresh = [ParentLink(contact_id=c, secret=secrets.token_hex(16), created_at=now) for c in wanted if c not in found]
    session.add_all(fresh)
    session.flush()
    found.update({row.contact_id: row.secret for row in fresh})
    return found


def revoke_parent_links(session: Session, contact_id: int, now: datetime) -> None:
    """Every link made for this contact so far stops working; the next email brings a new one."""
    row = session.get(ParentLink, contact_id)
    if row is not None:
        row.secret = secrets.token_hex(16)
        row.created_at = now
        row.last_used_at = None
        session.flush()


def parent_access(
    session: Session, contact_id: int, key: str, signed_at: datetime, now: datetime, lifetime: timedelta = LINK_LIFETIME
) -> ParentAccess | None:
    """The contact and thread a link opens, or None when revoked, rotated away or expired.

    `lifetime`: the page's 30 days after last use; an unsubscribe link in an old email
    (UNSUBSCRIBE_LIFETIME) keeps working longer, as RFC 8058 senders are expected to.
    """
    # The family and business in the same statement (the page reads both): no query each;
    # and the contact's read cursor, so a page view that shows nothing new writes no cursor.
    found = session.execute(
        select(Contact, ParentLink, Thread, ReadCursor.message_id)
        .join(ParentLink, ParentLink.contact_id == Contact.id)
        .join(Contact.family)
        .join(Thread, Thread.family_id == Contact.family_id)
        .join(Thread.business)
        .outerjoin(
            ReadCursor,
            and_(ReadCursor.thread_id == Thread.id, ReadCursor.person_kind == "contact", ReadCursor.person_id == Contact.id),
        )
        .options(contains_eager(Contact.family), contains_eager(Thread.business))
        .where(Contact.id == contact_id, Contact.removed_at.is_(None), Thread.active)
    ).first()
    if found is None:
        return None
    contact, link, thread, read_up_to = found
    if not hmac.compare_digest(link_key(link.secret, thread.reply_token), key):
        return None
    last_use = max(signed_at, link.last_used_at or signed_at)
    if now - last_use > lifetime:
        return None
    return ParentAccess(contact=contact, family=contact.family, thread=thread, used_at=link.last_used_at, read_up_to=read_up_to or 0)


def note_link_used(session: Session, access: ParentAccess, now: datetime) -> None:
    """A use keeps the contact's links alive for another 30 days (written when the noted use
    is an hour old or more)."""
    if access.used_at is not None and access.used_at <= now < access.used_at + LINK_USE_GRANULARITY:
        return
    session.execute(
        update(ParentLink)
        .where(ParentLink.contact_id == access.contact.id, or_(ParentLink.last_used_at.is_(None), ParentLink.last_used_at < now))
        .values(last_used_at=now)
    )
