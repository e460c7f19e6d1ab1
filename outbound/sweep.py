"""The periodic repair: re-derive from the database everything that is due.

A queue push can be lost (Redis restarted, the web process died right after its commit)
and a worker can be killed mid-task. None of that is stored only in the queue: a due
digest is "a contact's cursors are behind a message older than the delay", an undecided
alert is a contact message without `alerted_at`, an escalation is an unread, unescalated
contact message, and an unsent email is a `queued` outbox row. The sweep finds each of
these with one query and hands them to the same tasks the normal path uses; those
re-check under the thread lock, so finding something twice never sends it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from pawpost.settings import Settings
from outbound import outbox
from threads.models import Business, Contact, ContactAddress, Message, NotifiedCursor, ReadCursor, Staff, Thread
from threads.posting import parent_visible

# How far back each repair looks. A digest is still worth sending after a long outage; an
# alert ("at once") or an escalation older than this would only confuse.
DIGEST_LOOKBACK = timedelta(days=7)
ALERT_LOOKBACK = timedelta(hours=6)
ESCALATION_LOOKBACK = timedelta(days=1)
# Leave the normal path a moment before repairing behind it (repairing early is harmless:
# every decision is re-checked under the thread lock and every send is claimed).
GRACE = timedelta(seconds=3)


@dataclass(frozen=True)
class DueWork:
    digest_thread_ids: list[int]
    alert_message_ids: list[int]
    escalation_thread_ids: list[int]
    outbox_ids: list[int]

    @property
    def total(self) -> int:
        return sum(map(len, (self.digest_thread_ids, self.alert_message_ids, self.escalation_thread_ids, self.outbox_ids)))


def find_due(session: Session, settings: Settings, now: datetime) -> DueWork:
    return DueWork(
        digest_thread_ids=due_digest_threads(session, settings, now),
        alert_message_ids=undecided_alerts(session, now),
        escalation_thread_ids=due_escalations(session, settings, now),
        outbox_ids=outbox.due_outbox_ids(session, now - GRACE),
    )


def due_digest_threads(session: Session, settings: Settings, now: datetime) -> list[int]:
    """Threads where some contact with a deliverable address is owed a message older than the delay."""
    read, notified, message = aliased(ReadCursor), aliased(NotifiedCursor), aliased(Message)
    read_floor = func.coalesce(read.message_id, 0)
    notified_floor = func.coalesce(notified.message_id, 0)
    # The shortest delay any business uses: a superset, each thread's own delay is applied
    # when its digests are planned.
    shortest = session.scalar(select(func.min(Business.notify_delay_seconds)))
    cutoff = now - timedelta(seconds=min(settings.notify_delay_seconds, shortest if shortest is not None else settings.notify_delay_seconds))
    query = (
        select(Thread.id)
        .distinct()
        .join(Contact, Contact.family_id == Thread.family_id)
        .outerjoin(
            read, and_(read.thread_id == Thread.id, read.person_kind == "contact", read.person_id == Contact.id)
        )
        .outerjoin(
            notified,
            and_(notified.thread_id == Thread.id, notified.person_kind == "contact", notified.person_id == Contact.id),
        )
        .where(
            Thread.active,
            Contact.email_choice == "each",  # rule 7: summaries have their own run, paused none
            Thread.last_message_at >= now - DIGEST_LOOKBACK,
            Thread.last_message_id > read_floor,
            Thread.last_message_id > notified_floor,
            exists().where(
                ContactAddress.contact_id == Contact.id, ContactAddress.verified, ~ContactAddress.bouncing
            ),
            exists().where(
                message.thread_id == Thread.id,
                message.id > read_floor,
                message.id > notified_floor,
                message.author_type != "system",
                parent_visible(message),
                or_(message.contact_id.is_(None), message.contact_id != Contact.id),
                message.created_at <= cutoff,
            ),
        )
        .order_by(Thread.id)
    )
    return list(session.scalars(query))


def undecided_alerts(session: Session, now: datetime) -> list[int]:
    """Contact messages whose staff alerts were never decided (their push was lost)."""
    query = (
        select(Message.id)
        .join(Thread, Thread.id == Message.thread_id)
        .where(
            Thread.last_message_at >= now - ALERT_LOOKBACK,
            Message.author_type == "contact",
            Message.alerted_at.is_(None),
            Message.created_at >= now - ALERT_LOOKBACK,
            Message.created_at <= now - GRACE,
        )
        .order_by(Message.id)
    )
    return list(session.scalars(query))


def due_escalations(session: Session, settings: Settings, now: datetime) -> list[int]:
    """Threads with a contact message no active staff member read within the escalation delay."""
    shortest = session.scalar(select(func.min(Business.escalate_after_minutes)))
    cutoff = now - timedelta(minutes=min(settings.escalate_after_minutes, shortest if shortest is not None else settings.escalate_after_minutes))
    read_by_staff = exists().where(
        ReadCursor.thread_id == Message.thread_id,
        ReadCursor.person_kind == "staff",
        ReadCursor.message_id >= Message.id,
        ReadCursor.person_id.in_(select(Staff.id).where(Staff.business_id == Thread.business_id, Staff.active)),
    )
    query = (
        select(Thread.id)
        .distinct()
        .join(Message, Message.thread_id == Thread.id)
        .where(
            Thread.last_message_at >= now - ESCALATION_LOOKBACK,
            Message.author_type == "contact",
            Message.escalated_at.is_(None),
            Message.created_at >= now - ESCALATION_LOOKBACK,
            Message.created_at <= cutoff,
            ~read_by_staff,
        )
        .order_by(Thread.id)
    )
    return list(session.scalars(query))
