"""Rule 7: each contact chooses how often they are emailed — each message, a daily summary, paused.

The choice only changes parent digests: staff alerts, what staff see and a parent's own
replies never depend on it. A daily summary is due once per local day, at or after the
chosen local time in the business's zone: on the spring-forward day a time inside the
skipped hour comes at the first minute after it, and on the fall-back day the repeated hour
cannot send twice (`summary_sent_on` names the local day already summarised).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from threads.errors import PawpostError
from threads.models import EMAIL_CHOICES, Business, Contact, Family, Thread


class InvalidChoice(PawpostError):
    """An email choice or summary time that is not one of the offered ones."""


@dataclass(frozen=True)
class DueSummary:
    contact_id: int
    thread_id: int
    local_day: str


def set_email_choice(session: Session, contact: Contact, choice: str, now: datetime, summary_minute: int | None = None) -> None:
    """Record the contact's choice (and, for a daily summary, its local time)."""
    if choice not in EMAIL_CHOICES:
        raise InvalidChoice(f"unknown email choice {choice!r}")
    if choice == "daily" and (summary_minute is None or not 0 <= summary_minute < 24 * 60):
        raise InvalidChoice("a daily summary needs a time of day")
    if contact.email_choice != choice or (choice == "daily" and contact.summary_minute != summary_minute):
        contact.email_choice_at = now
    contact.email_choice = choice
    contact.summary_minute = summary_minute if choice == "daily" else contact.summary_minute
    if choice == "daily" and contact.summary_sent_on is None:
        # Choosing after today's time does not send a summary at once: the first is tomorrow's.
        local = now.astimezone(ZoneInfo(contact.family.business.timezone))
        if local.hour * 60 + local.minute >= (summary_minute or 0):
            contact.summary_sent_on = local.date().isoformat()
    session.flush()


def due_summaries(session: Session, now: datetime) -> list[DueSummary]:
    """Daily-summary contacts whose local time has come today and who were not summarised today."""
    rows = session.execute(
        select(Contact.id, Contact.summary_minute, Contact.summary_sent_on, Thread.id, Business.timezone)
        .join(Family, Family.id == Contact.family_id)
        .join(Business, Business.id == Family.business_id)
        .join(Thread, Thread.family_id == Family.id)
        .where(Contact.email_choice == "daily", Thread.active)
        .order_by(Contact.id)
    ).all()
    zones: dict[str, datetime] = {}
    due = []
    for contact_id, minute, sent_on, thread_id, zone in rows:
        local = zones.setdefault(zone, now.astimezone(ZoneInfo(zone)))
        day = local.date().isoformat()
        if sent_on != day and local.hour * 60 + local.minute >= (minute or 0):
            due.append(DueSummary(contact_id, thread_id, day))
    return due


def mark_summarised(session: Session, summaries: list[DueSummary]) -> None:
    """Today's summary is done for these contacts (sent, or nothing was owed)."""
    for item in summaries:
        contact = session.get(Contact, item.contact_id)
        if contact is not None:
            contact.summary_sent_on = item.local_day
    session.flush()


def choice_label(contact: Contact, zone: str) -> str | None:
    """What staff see on the parent's card; None for the default."""
    if contact.email_choice == "paused":
        since = contact.email_choice_at.astimezone(ZoneInfo(zone)).strftime("%-d %b %Y") if contact.email_choice_at else "now"
        return f"Emails paused since {since}"
    if contact.email_choice == "daily" and contact.summary_minute is not None:
        return f"Daily summary at {contact.summary_minute // 60:02d}:{contact.summary_minute % 60:02d}"
    return None
