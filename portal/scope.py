"""Loading what a URL names, scoped to the signed-in staff member's business and access.

Ids of another business raise the "unknown" errors (404, as if they did not exist); rows of
one's own business one may not use raise `AccessDenied` (403).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.runtime import db, now
from threads.access import ensure_can_access_family, ensure_can_access_thread
from threads.directory import family_of_business
from threads.errors import UnknownFamily, UnknownThread
from threads.models import Family, Staff, Thread


def thread_for(staff: Staff, thread_id: int) -> Thread:
    """The thread with its family and pets (every thread page shows them), in one query."""
    thread = db().scalars(
        select(Thread)
        .options(joinedload(Thread.family).joinedload(Family.pets))
        .where(Thread.id == thread_id, Thread.business_id == staff.business_id)
    ).unique().one_or_none()
    if thread is None:
        raise UnknownThread(f"no thread {thread_id} in business {staff.business_id}")
    ensure_can_access_thread(db(), staff, thread, now())
    return thread


def family_for(staff: Staff, family_id: int) -> Family:
    family = family_of_business(db(), staff.business_id, family_id)
    if family is None:
        raise UnknownFamily(f"no family {family_id} in business {staff.business_id}")
    ensure_can_access_family(db(), staff, family, now())
    return family
