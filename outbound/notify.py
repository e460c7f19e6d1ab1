"""Who must be emailed about what, decided from the database at send time.

`message_posted` is the one door the portal and inbound use, after their commit. It only
enqueues; the tasks call the `plan_*` functions here, which read the cursors *when the
email is due* (a parent who read the thread in the meantime gets nothing), write the
outbox rows and the cursor or marker they imply in the caller's transaction, and return the
new outbox ids for the caller to send after committing. Each function takes `now`, so tests
drive them with a fake clock.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import Message as MimeMessage
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Update, bindparam, exists, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from pawpost.settings import Settings
from outbound import compose, digests, live, outbox
from outbound.render import (
    AlertContent,
    Envelope,
    EscalationContent,
    MentionContent,
    render_alert,
    render_escalation,
    render_mention,
)
from threads.models import (
    Appointment,
    Contact,
    Message,
    ReadCursor,
    Staff,
    Thread,
)
from threads.mentions import mentioned_staff
from threads.schedule import appointments_for_family, business_today, scheduled_staff
from threads.types import UTCDateTime

logger = logging.getLogger(__name__)


def message_posted(message_id: int) -> None:
    """Tell outbound a message was committed. Never raises: the sweep repairs a lost push,
    and an open tab's next fetch repairs a lost live hint."""
    try:
        from outbound.tasks import process_posted_message, send_due_webhooks

        process_posted_message(message_id)
        send_due_webhooks()
    except Exception:  # any queue fault: the post is committed, the sweep will find it
        logger.exception("could not enqueue notifications for message %s; the sweep will catch up", message_id)
    live.message_posted(message_id)


def webhooks_due() -> None:
    """Tell the worker webhook deliveries were committed (the sweep repairs a lost push)."""
    try:
        from outbound.tasks import send_due_webhooks

        send_due_webhooks()
    except Exception:
        logger.exception("could not enqueue webhook deliveries; the sweep will catch up")


@dataclass(frozen=True)
class DecidedPost:
    """A committed post whose staff alerts `plan_alerts` decided in its own transaction."""

    message_id: int
    thread_id: int
    author_type: str
    created_at: datetime
    alert_ids: tuple[int, ...]
    digest_delay: timedelta  # the business's own delays (`Business.notify_delay`)
    escalation_delay: timedelta


def alerts_decided(posts: Sequence[DecidedPost]) -> None:
    """After the commits of posts whose alerts were decided in their own transactions (the
    email ingest hands on a chunk's posts together): send those alerts, write every digest
    and escalation check to the schedule, and hint open tabs like `message_posted`; on
    Redis one round trip for the checks and one for the hints, whatever the number of posts.
    Never raises (the sweep repairs; a tab's next fetch heals a lost hint)."""
    if not posts:
        return
    try:
        from outbound.tasks import run_after_posts

        run_after_posts(posts)
    except Exception:
        logger.exception("could not hand on the alerts of %d post(s); the sweep will catch up", len(posts))
    live.messages_posted([post.message_id for post in posts])


@dataclass(frozen=True)
class DigestDecision:
    """For one thread: the emails written now, and when to look again (a message not yet due)."""

    outbox_ids: list[int]
    next_due_at: datetime | None


def lock_thread(session: Session, thread_id: int) -> Thread | None:
    """The thread, locked for this transaction: decisions about one thread never interleave."""
    locked = digests.lock_threads(session, [thread_id], wait=True, active_only=False)
    return locked[0] if locked else None


def plan_digests(session: Session, settings: Settings, thread_id: int, now: datetime) -> DigestDecision:
    """Rule 3 for one thread: one email per contact holding everything unread and not yet
    emailed to them, once the oldest such message is `notify_delay_seconds` old; the
    notified cursor moves in the same transaction as the outbox row, so no message is
    emailed twice. The batch path (`digests.plan_digest_batch`) with one thread, waiting
    for its lock."""
    decision = digests.plan_digest_batch(session, settings, [thread_id], now, wait=True)
    return DigestDecision(decision.outbox_ids, decision.next_due.get(thread_id))


def _load_message(session: Session, message_id: int) -> Message | None:
    return session.scalar(
        select(Message)
        .options(selectinload(Message.attachments), selectinload(Message.contact).selectinload(Contact.addresses))
        .where(Message.id == message_id)
    )


def plan_alerts(session: Session, settings: Settings, message_id: int, now: datetime) -> list[int]:
    """Rule 4: a contact's message goes at once to every active staff member scheduled with
    the family on the message's day (business time zone), never to its author.

    Decided once per message (`alerted_at`); the sweep re-decides only undecided messages.
    """
    message = _load_message(session, message_id)
    if message is None or message.author_type != "contact" or message.alerted_at is not None:
        return []
    thread = lock_thread(session, message.thread_id)
    session.refresh(message, ["alerted_at"])
    if thread is None or message.alerted_at is not None:
        return []
    return plan_new_message_alerts(session, settings, message, thread, now)


def plan_new_message_alerts(session: Session, settings: Settings, message: Message, thread: Thread, now: datetime) -> list[int]:
    """`plan_alerts` for a contact's message posted in this very transaction (the email
    ingest): the message and its thread are at hand and the thread row is already written
    (so held) by the post, so nothing is loaded or locked again."""
    family, business = thread.family, thread.business
    day = business_today(business, message.created_at)
    recipients = scheduled_staff(session, family, day)
    if recipients and message.contact is not None:  # the author's addresses matter only then
        author_addresses = {a.email for a in message.contact.addresses}
        recipients = [staff for staff in recipients if staff.email not in author_addresses]
    if not recipients:  # nobody to alert: what an alert would show is never read
        _mark_alerted(session, message, now)
        return []
    appointments = _current_or_next(appointments_for_family(session, family, day), message.created_at, business.timezone)
    shown = compose.shown_messages(settings, [message], business)[0]
    pets = compose.pet_names(family)
    created = _email_staff(
        session,
        settings,
        thread,
        kind="alert",
        key_prefix=f"alert:{message.id}",
        recipients=recipients,
        message_ids=[message.id],
        now=now,
        from_name=f"{message.author_name} via {business.sender_name}",
        render=lambda staff, envelope: render_alert(
            envelope,
            AlertContent(
                business_name=business.name,
                family_name=family.name,
                pet_names=pets,
                appointments=appointments,
                message=shown,
                portal_url=compose.thread_link(settings, thread.id),
                recipient_name=staff.name,
            ),
        ),
    )
    _mark_alerted(session, message, now)
    return created


def _mark_alerted(session: Session, message: Message, now: datetime) -> None:
    """Record that the message's alerts are decided: one UPDATE on the connection (the
    unit of work's flush for one column cost more CPU than the statement), after flushing
    whatever the planning added."""
    session.flush()
    session.connection().execute(_alerted_statement(), {"message_id": message.id, "now": now})
    set_committed_value(message, "alerted_at", now)


@cache
def _alerted_statement() -> Update:
    return update(Message).where(Message.id == bindparam("message_id")).values(alerted_at=bindparam("now", type_=UTCDateTime()))


def _current_or_next(appointments: Sequence[Appointment], at: datetime, timezone: str) -> tuple[str, ...]:
    """The appointment under way when the parent wrote, else the next one today; none
    once today's have ended (an alert about an evening message shows no finished walk)."""
    for appointment in appointments:
        if appointment.status != "cancelled" and appointment.ends_at > at:
            label = "Now" if appointment.starts_at <= at else "Next"
            when = compose.local_time_range(appointment.starts_at, appointment.ends_at, timezone)
            return (f"{label}: {appointment.service}, {when}",)
    return ()


def plan_mentions(session: Session, settings: Settings, message: Message, thread: Thread, now: datetime) -> list[int]:
    """An internal note's `@Name` mentions: one email per mentioned active staff member (not
    the author), each at most once (`mention:<message>:<staff>`), written in the posting
    transaction. Only notes mention: a message parents read is never forwarded this way.

    The rows are kind `alert` (a staff alert about one message); their email has no
    Reply-To and no thread headers, so an answer by email cannot land where parents read.
    """
    if not message.internal or message.staff_id is None:
        return []
    recipients = mentioned_staff(session, thread.business_id, message.body, author_id=message.staff_id)
    if not recipients:
        return []
    business, family = thread.business, thread.family
    shown = compose.shown_messages(settings, [message], business)[0]
    author = message.author_name
    return _email_staff(
        session,
        settings,
        thread,
        kind="alert",
        key_prefix=f"mention:{message.id}",
        recipients=recipients,
        message_ids=[message.id],
        now=now,
        from_name=f"{author} via {business.sender_name}",
        render=lambda staff, envelope: render_mention(
            dataclasses.replace(envelope, reply_to="", root_message_id="", subject=f"{author} mentioned you: {envelope.subject}"),
            MentionContent(
                business_name=business.name,
                family_name=family.name,
                author_name=author,
                note=shown,
                portal_url=f"{compose.thread_link(settings, thread.id)}#m{message.id}",
                recipient_name=staff.name,
            ),
        ),
    )


def note_posted(message_id: int, outbox_ids: Sequence[int]) -> None:
    """After the commit of an internal note: send its mention emails and hint open tabs.
    No digest follows (rule 8). Never raises: the sweep sends queued rows a lost push left."""
    if outbox_ids:
        try:
            from outbound.tasks import deliver_emails

            deliver_emails(list(outbox_ids))
        except Exception:
            logger.exception("could not enqueue the mentions of note %s; the sweep will send them", message_id)
    live.message_posted(message_id)


def plan_escalation(session: Session, settings: Settings, thread_id: int, now: datetime) -> list[int]:
    """Parent messages no staff member has read after `escalate_after_minutes` go, once, to
    every active senior and admin of the business, one email per thread and person."""
    thread = lock_thread(session, thread_id)
    if thread is None:
        return []
    delay = thread.business.escalation_delay(settings.escalate_after_minutes)
    cutoff = now - delay
    messages = list(
        session.scalars(
            select(Message)
            .options(selectinload(Message.attachments), selectinload(Message.contact))
            .where(
                Message.thread_id == thread.id,
                Message.author_type == "contact",
                Message.escalated_at.is_(None),
                Message.created_at <= cutoff,
                ~_read_by_any_staff(thread),
            )
            .order_by(Message.id)
        )
    )
    if not messages:
        return []
    business, family = thread.business, thread.family
    seniors = session.scalars(
        select(Staff)
        .where(Staff.business_id == business.id, Staff.active, Staff.role.in_(("senior", "admin")))
        .order_by(Staff.id)
    ).all()
    up_to = messages[-1].id
    shown_all = compose.shown_messages(settings, messages, business)
    pets = compose.pet_names(family)
    created = _email_staff(
        session,
        settings,
        thread,
        kind="escalation",
        key_prefix=f"escalation:{thread.id}:{up_to}",
        recipients=seniors,
        message_ids=[m.id for m in messages],
        now=now,
        from_name=f"{business.sender_name} (unanswered)",
        render=lambda staff, envelope: render_escalation(
            envelope,
            EscalationContent(
                business_name=business.name,
                family_name=family.name,
                pet_names=pets,
                minutes=int(delay.total_seconds() // 60),
                messages=shown_all,
                portal_url=compose.thread_link(settings, thread.id),
                recipient_name=staff.name,
            ),
        ),
    )
    session.execute(update(Message).where(Message.id.in_([m.id for m in messages])).values(escalated_at=now))
    return created


def _email_staff(
    session: Session,
    settings: Settings,
    thread: Thread,
    *,
    kind: str,
    key_prefix: str,
    recipients: Sequence[Staff],
    message_ids: list[int],
    now: datetime,
    from_name: str,
    render: Callable[[Staff, Envelope], MimeMessage],
) -> list[int]:
    """One outbox row per staff member, each at most once (`<key_prefix>:<staff id>`).

    `render(staff, envelope)` gets the envelope addressed to that staff member from
    `from_name`, with the Message-ID the outbox drew for the row.
    """
    taken = outbox.dedupe_keys_taken(session, (f"{key_prefix}:{s.id}" for s in recipients))
    created = []
    for staff in recipients:
        key = f"{key_prefix}:{staff.id}"
        if key in taken:
            continue
        created.append(
            outbox.add_email(
                session,
                settings,
                thread,
                kind=kind,
                dedupe_key=key,
                recipient_kind="staff",
                recipient_id=staff.id,
                recipient_email=staff.email,
                subject=compose.subject_for(thread),
                message_ids=message_ids,
                now=now,
                render=lambda message_id, staff=staff: render(
                    staff,
                    compose.envelope(
                        settings,
                        thread,
                        from_name=from_name,
                        to_name=staff.name,
                        to_address=staff.email,
                        message_id=message_id,
                        now=now,
                    ),
                ),
            )
        )
    return created


def _read_by_any_staff(thread: Thread):  # type: ignore[no-untyped-def]
    """Some active staff member of the business has a read cursor at or past the message."""
    return exists().where(
        ReadCursor.thread_id == thread.id,
        ReadCursor.person_kind == "staff",
        ReadCursor.message_id >= Message.id,
        ReadCursor.person_id.in_(select(Staff.id).where(Staff.business_id == thread.business_id, Staff.active)),
    )
