"""Rule 5, access: senior/admin see their whole business; basic only today's families."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from threads.errors import AccessDenied
from threads.models import Family, Staff, Thread
from threads.schedule import business_today, is_scheduled


def can_access_family(session: Session, staff: Staff, family: Family, now: datetime) -> bool:
    """Whether `staff` may read and post in this family's thread at `now`."""
    if not staff.active or staff.business_id != family.business_id:
        return False
    if staff.is_senior:
        return True
    return is_scheduled(session, staff, family, business_today(staff.business, now))


def can_access_thread(session: Session, staff: Staff, thread: Thread, now: datetime) -> bool:
    return can_access_family(session, staff, thread.family, now)


def ensure_can_access_thread(session: Session, staff: Staff, thread: Thread, now: datetime) -> None:
    """Raise `AccessDenied` unless `staff` may use the thread now."""
    if not can_access_thread(session, staff, thread, now):
        raise AccessDenied(f"staff {staff.id} may not use thread {thread.id}")


def ensure_can_access_family(session: Session, staff: Staff, family: Family, now: datetime) -> None:
    if not can_access_family(session, staff, family, now):
        raise AccessDenied(f"staff {staff.id} may not see family {family.id}")
