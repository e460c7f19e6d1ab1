"""`updated_at` of staff, families and appointments: stamped at every flush that changes them.

The API's `updated_since` is only as good as the stamps, and the directory is written through
several doors (the API, `pawpost import`, the CSV import, the admin forms, bounces). So the
stamp is not left to each door: before every flush, a changed staff member, family or
appointment (its staff list included) gets the flush's instant, and so does the family of
every contact, address or pet added, changed or removed. Core INSERTs get the column default,
Core UPDATEs of the three tables its `onupdate`; the few Core UPDATEs of addresses (bounce
flags, kept off the ORM for speed) call `touch_families`.
"""

from __future__ import annotations

from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import ColumnElement, event, select, update
from sqlalchemy.orm import Session

from threads.models import Appointment, Contact, ContactAddress, Family, Pet, Staff
from threads.types import utcnow

STAMPED = (Staff, Family, Appointment)


def _family_of(session: Session, item: object) -> Family | None:
    """The family a contact, address or pet belongs to (loaded if need be)."""
    if isinstance(item, ContactAddress):
        contact = item.contact if item.contact is not None else (session.get(Contact, item.contact_id) if item.contact_id else None)
        return _family_of(session, contact) if contact is not None else None
    if isinstance(item, Contact | Pet):
        if item.family is not None:
            return item.family
        return session.get(Family, item.family_id) if item.family_id else None
    return None


def touch_families(session: Session, addresses: ColumnElement[bool], now: datetime) -> None:
    """Stamp the families owning the contact addresses `addresses` selects (after a Core
    UPDATE of those addresses, which no flush sees)."""
    owners = select(Contact.family_id).join(ContactAddress, ContactAddress.contact_id == Contact.id).where(addresses)
    session.execute(update(Family).where(Family.id.in_(owners)).values(updated_at=now), execution_options={"synchronize_session": False})


def stamp_changes(session: Session, now: datetime) -> None:
    """Give every changed directory row of this flush the instant `now`."""
    families: set[Family] = set()
    for item in chain(session.new, session.dirty, session.deleted):
        if isinstance(item, STAMPED):
            if item in session.new or session.is_modified(item):
                item.updated_at = now
        elif isinstance(item, Contact | Pet | ContactAddress):
            if item in session.dirty and not session.is_modified(item):
                continue
            family = _family_of(session, item)
            if family is not None:
                families.add(family)
    for family in families:
        if family not in session.deleted:
            family.updated_at = now


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    stamp_changes(session, utcnow())
