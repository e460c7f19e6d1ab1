"""Announcements: a senior's one message to many families, posted into each family's own thread.

Resumable by construction: `create_announcement` writes the announcement and one delivery
row per family in the caller's transaction; `post_pending` posts a batch, each message and
its delivery mark in the same transaction, so after a crash the next run posts exactly
the families whose mark never committed — none skipped, none twice. PostgreSQL locks the
delivery rows it takes (`SKIP LOCKED`), so two workers split a run instead of doubling it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from threads.directory import ensure_thread
from threads.errors import AccessDenied, FieldProblems
from threads.models import Announcement, AnnouncementDelivery, Contact, ContactAddress, Family, Staff
from threads.posting import post_message
from threads.schedule import families_with_appointments

MAX_BODY = 10_000
AUDIENCES = ("everyone", "day", "families")


@dataclass(frozen=True)
class Audience:
    """Who an announcement reaches: the families, and how many of their parents are emailable."""

    family_ids: list[int]
    parents: int
    label: str


def pick_audience(session: Session, staff: Staff, kind: str, *, day: date | None = None, family_ids: Sequence[int] = ()) -> Audience:
    """The families of `staff`'s business an audience choice names (rule 5: seniors only)."""
    if not staff.is_senior:
        raise AccessDenied("only seniors and admins send announcements")
    business_id = staff.business_id
    if kind == "everyone":
        ids = list(session.scalars(select(Family.id).where(Family.business_id == business_id).order_by(Family.id)))
        label = "Every family"
    elif kind == "day":
        if day is None:
            raise FieldProblems({"day": "Pick the day."})
        ids = families_with_appointments(session, staff.business, day)
        label = f"Families with an appointment on {day.isoformat()}"
    elif kind == "families":
        wanted = sorted(set(family_ids))
        ids = list(session.scalars(select(Family.id).where(Family.business_id == business_id, Family.id.in_(wanted)).order_by(Family.id))) if wanted else []
        label = f"{len(ids)} chosen famil{'y' if len(ids) == 1 else 'ies'}"
    else:
        raise FieldProblems({"audience": "Choose who it goes to."})
    parents = 0
    if ids:
        parents = session.scalar(
            select(func.count(func.distinct(Contact.id)))
            .join(ContactAddress, ContactAddress.contact_id == Contact.id)
            .where(Contact.family_id.in_(ids), ContactAddress.verified, ~ContactAddress.bouncing)
        ) or 0
    return Audience(ids, parents, label)


def create_announcement(session: Session, staff: Staff, body: str, audience: Audience, now: datetime) -> Announcement:
    """The announcement and its delivery rows, in the caller's transaction (never half-written)."""
    if not staff.is_senior:
        raise AccessDenied("only seniors and admins send announcements")
    body = body.strip()
    problems = {}
    if not body:
        problems["body"] = "Write the announcement."
    elif len(body) > MAX_BODY:
        problems["body"] = f"At most {MAX_BODY} characters."
    if not audience.family_ids:
        problems["audience"] = "No family matches this choice."
    if problems:
        raise FieldProblems(problems)
    announcement = Announcement(business_id=staff.business_id, staff_id=staff.id, body=body, audience=audience.label[:200], created_at=now)
    session.add(announcement)
    session.flush()
    session.add_all(AnnouncementDelivery(announcement_id=announcement.id, family_id=f) for f in audience.family_ids)
    session.flush()
    return announcement


def post_pending(session: Session, announcement_id: int, mail_domain: str, now: datetime, *, batch: int = 50) -> list[int]:
    """Post up to `batch` undelivered families of the announcement; the new message ids.

    The caller commits (the posts and their marks together) and then tells outbound. An
    empty list means nothing was left: the announcement is marked finished.
    """
    announcement = session.get(Announcement, announcement_id)
    if announcement is None:
        return []
    query = (
        select(AnnouncementDelivery)
        .where(AnnouncementDelivery.announcement_id == announcement_id, AnnouncementDelivery.message_id.is_(None))
        .order_by(AnnouncementDelivery.family_id)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    deliveries = list(session.scalars(query))
    author = session.get(Staff, announcement.staff_id) if announcement.staff_id else None
    posted = []
    for delivery in deliveries:
        family = session.get(Family, delivery.family_id)
        if family is None:
            continue
        thread = ensure_thread(session, family, mail_domain)
        message = post_message(session, thread, author, announcement.body, source="portal", now=now)
        delivery.message_id = message.id
        posted.append(message.id)
    if not deliveries and announcement.finished_at is None:
        announcement.finished_at = now
    session.flush()
    return posted


def unfinished_announcements(session: Session) -> list[int]:
    """Announcements with families still to post (the sweep restarts their worker)."""
    return list(
        session.scalars(
            select(AnnouncementDelivery.announcement_id)
            .where(AnnouncementDelivery.message_id.is_(None))
            .distinct()
            .order_by(AnnouncementDelivery.announcement_id)
        )
    )


def progress(session: Session, announcement_id: int) -> tuple[int, int]:
    """(families posted, families in all)."""
    row = session.execute(
        select(func.count(AnnouncementDelivery.message_id), func.count())
        .where(AnnouncementDelivery.announcement_id == announcement_id)
    ).one()
    return int(row[0]), int(row[1])
