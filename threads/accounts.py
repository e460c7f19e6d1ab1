"""Staff accounts: signed-in sessions the server can end, passwords, deactivation.

A browser's session is a row (`StaffSession`) named by a random token in the signed cookie;
signing out, changing a password or deactivating someone ends rows, so a copied cookie stops
working at once instead of living out its 14 hours. Functions take a session and never commit.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from threads.models import Staff, StaffSession

SESSION_LIFETIME = timedelta(hours=14)
# How stale "last seen" may get before a request writes it again: one write per session per
# few minutes, not one per request.
LAST_SEEN_GRANULARITY = timedelta(minutes=5)


def token_hash(token: str) -> str:
    """What is stored for a secret token: enough to find its row, useless to present."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_staff_session(
    session: Session, staff: Staff, now: datetime, *, remote_addr: str | None = None, user_agent: str | None = None
) -> tuple[StaffSession, str]:
    """A new session row for `staff` and the token for their cookie (shown only once)."""
    token = secrets.token_urlsafe(32)
    row = StaffSession(
        business_id=staff.business_id,
        staff_id=staff.id,
        token_hash=token_hash(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + SESSION_LIFETIME,
        remote_addr=(remote_addr or "")[:64] or None,
        user_agent=(user_agent or "")[:255] or None,
    )
    session.add(row)
    session.flush()
    return row, token


def live_session(session: Session, token: str, now: datetime) -> StaffSession | None:
    """The open, unexpired session this token names, with its active staff member (and business)."""
    row = session.scalar(
        select(StaffSession)
        .options(joinedload(StaffSession.staff).joinedload(Staff.business))
        .where(StaffSession.token_hash == token_hash(token))
    )
    if row is None or row.ended_at is not None or row.expires_at <= now or not row.staff.active:
        return None
    return row


def touch_session(session: Session, row: StaffSession, now: datetime) -> bool:
    """Record activity when "last seen" is stale; True when a write is pending."""
    if now - row.last_seen_at < LAST_SEEN_GRANULARITY:
        return False
    row.last_seen_at = now
    return True


def end_session(session: Session, row: StaffSession, now: datetime) -> None:
    if row.ended_at is None:
        row.ended_at = now


def end_all_sessions(session: Session, staff_id: int, now: datetime) -> int:
    """End every open session of one staff member; how many were open."""
    result = session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.ended_at.is_(None))
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def open_sessions(session: Session, staff_id: int, now: datetime) -> Sequence[StaffSession]:
    """A staff member's sessions that still work, most recently used first."""
    return session.scalars(
        select(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.ended_at.is_(None), StaffSession.expires_at > now)
        .order_by(StaffSession.last_seen_at.desc(), StaffSession.id.desc())
    ).all()


def set_password_hash(session: Session, staff: Staff, password_hash: str, now: datetime) -> None:
    """A new password ends every session the old one opened."""
    staff.password_hash = password_hash
    end_all_sessions(session, staff.id, now)


def set_active(session: Session, staff: Staff, active: bool, now: datetime) -> None:
    """Deactivating someone signs them out everywhere; reactivating opens nothing."""
    staff.active = active
    if not active:
        end_all_sessions(session, staff.id, now)
