"""Staff accounts: sessions the server can end, passwords, invitations and reset links.

A browser's session is a row (`StaffSession`) named by a random token in the signed cookie;
signing out, changing a password or deactivating someone ends rows, so a copied cookie stops
working at once instead of living out its 14 hours. Functions take a session and never commit.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import Session, joinedload

from threads.directory import find_staff_by_email, normalise_email
from threads.errors import DirectoryError, FieldProblems
from threads.importing import ImportReport, upsert_staff, validate_staff_member
from threads.models import ROLES, Business, Staff, StaffSession, StaffToken
from threads.staff_sessions import end_all_sessions

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
    row = session.scalar(session_named(token))
    return row if row is not None and is_live(row, now) else None


def session_named(token: str) -> Select[tuple[StaffSession]]:
    """The statement `live_session` runs: the row the token names, with its staff member and
    business. Callers that need more at the start of a request add columns to
    `SESSION_BY_TOKEN_HASH` (one round trip instead of several), pass `token_hash(token)`
    and check the row with `is_live`."""
    return SESSION_BY_TOKEN_HASH.params(token_hash=token_hash(token))


# Built once: every signed-in request runs it.
SESSION_BY_TOKEN_HASH: Select[tuple[StaffSession]] = (
    select(StaffSession)
    .options(joinedload(StaffSession.staff).joinedload(Staff.business))
    .where(StaffSession.token_hash == bindparam("token_hash"))
)


def is_live(row: StaffSession, now: datetime) -> bool:
    """Open, unexpired, and its staff member still active."""
    return row.ended_at is None and row.expires_at > now and row.staff.active


def touch_session(session: Session, row: StaffSession, now: datetime) -> bool:
    """Record activity when "last seen" is stale; True when a write is pending."""
    if now - row.last_seen_at < LAST_SEEN_GRANULARITY:
        return False
    row.last_seen_at = now
    return True


def end_session(session: Session, row: StaffSession, now: datetime) -> None:
    if row.ended_at is None:
        row.ended_at = now


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


INVITE_LIFETIME = timedelta(days=7)
PASSWORD_RESET_LIFETIME = timedelta(hours=1)
TOKEN_LIFETIMES = {"invite": INVITE_LIFETIME, "password_reset": PASSWORD_RESET_LIFETIME}


class StaffProblems(FieldProblems):
    """A staff form or command was refused; `problems` maps each field to what is wrong."""


def issue_token(session: Session, staff: Staff, purpose: str, now: datetime) -> tuple[StaffToken, str]:
    """A new single-use link token for `staff` (shown only once); earlier unused ones of the
    same purpose stop working, so only the newest email's link does."""
    session.execute(
        update(StaffToken)
        .where(StaffToken.staff_id == staff.id, StaffToken.purpose == purpose, StaffToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    token = secrets.token_urlsafe(32)
    row = StaffToken(
        business_id=staff.business_id,
        staff_id=staff.id,
        purpose=purpose,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=now + TOKEN_LIFETIMES[purpose],
    )
    session.add(row)
    session.flush()
    return row, token


def valid_token(session: Session, token: str, purpose: str, now: datetime) -> StaffToken | None:
    """The unused, unexpired token of this purpose, for an active staff member; else None."""
    row = session.scalar(
        select(StaffToken)
        .options(joinedload(StaffToken.staff).joinedload(Staff.business))
        .where(StaffToken.token_hash == token_hash(token), StaffToken.purpose == purpose)
    )
    if row is None or row.used_at is not None or row.expires_at <= now or not row.staff.active:
        return None
    return row


def redeem_token(session: Session, row: StaffToken, password_hash: str, now: datetime) -> Staff:
    """Use the link: set the password (ending every session) and retire every open link."""
    staff = row.staff
    set_password_hash(session, staff, password_hash, now)
    session.execute(
        update(StaffToken)
        .where(StaffToken.staff_id == staff.id, StaffToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    row.used_at = now
    return staff


def invite_staff(session: Session, business_id: int, *, name: str, email: str, role: str) -> Staff:
    """A new staff member without a password (they choose one from the invitation).

    The import's rules decide what is valid (`validate_staff_member`); an address already on
    the team is refused. Raises `StaffProblems` with each problem by field.
    """
    entry = {"name": name.strip(), "email": email.strip(), "role": role}
    problems = validate_staff_member(entry)
    address = normalise_email(email)
    if "email" not in problems and find_staff_by_email(session, business_id, address) is not None:
        problems["email"] = f"{address} is already on the team"
    if problems:
        raise StaffProblems(problems)
    staff = Staff(business_id=business_id, name=entry["name"], email=address, role=role, password_hash=None, active=True)
    session.add(staff)
    session.flush()
    return staff


def put_staff(session: Session, business: Business, external_id: str, entry: dict[str, Any]) -> tuple[Staff, bool]:
    """Create or replace a staff member by the business's id (the API's PUT), with the import's
    rules and match (the id, else the email: someone added in the portal is adopted). An email
    of another staff member with their own id is refused; deactivating or a new password ends
    their sessions (in `upsert_staff`, as the Staff page does). Raises `DirectoryError`; the person, and whether they are new."""
    problems = [f"{where}: {text}" for where, text in validate_staff_member(entry).items()]
    if "active" in entry and not isinstance(entry["active"], bool):
        problems.append("active: must be true or false")
    if not any(p.startswith("email:") for p in problems):
        owner = find_staff_by_email(session, business.id, entry["email"])
        if owner is not None and owner.external_id not in (None, external_id):
            problems.append(f"email: {normalise_email(entry['email'])} belongs to staff member {owner.external_id!r}")
    if problems:
        raise DirectoryError(problems)
    report = ImportReport()
    person = upsert_staff(session, business, {**entry, "id": external_id}, report)
    return person, "staff" in report.created


def change_role(staff: Staff, role: str) -> None:
    if role not in ROLES:
        raise StaffProblems({"role": f"must be one of {', '.join(ROLES)}"})
    staff.role = role
