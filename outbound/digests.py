"""Rule 3 for a batch of threads at once: parent digests decided from the cursors, set-based.

A sweep finds thousands of due threads; deciding them one transaction and a dozen queries
each made the worker ~10x slower than its relay. Here one transaction decides a batch:
lock the batch's threads, read every contact, cursor and owed message of the batch in a
few queries, render, then write every outbox row, message link and notified cursor in a
few multi-row statements. The rule is exactly `threads.reading.pending_notifications`:
unread, not yet emailed, no system notes, no internal notes (rule 8), never the contact's
own words.

On PostgreSQL the threads are locked `FOR UPDATE SKIP LOCKED` in id order: two workers
handed the same batch split it instead of queueing behind each other, and a thread another
transaction holds comes back as `busy` for the caller to try again shortly. SQLite's
`BEGIN IMMEDIATE` already serialises writers.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, defer, selectinload

from outbound import compose, outbox
from outbound.links import parent_url, unsubscribe_address
from outbound.render import DigestContent, ShownMessage, render_digest
from pawpost.settings import Settings
from threads.models import Contact, ContactAddress, Family, Message, NotifiedCursor, ReadCursor, Thread
from threads.parent_links import link_key, link_secrets
from threads.posting import parent_visible
from threads.types import utcnow

logger = logging.getLogger(__name__)

# What one digest holds: at most this many messages and this much text (each message's
# text already capped at compose.MAX_EMAIL_MESSAGE_CHARS). Owed messages beyond it stay
# owed (the notified cursor stops at the last one shown) and go in the next digest, which
# the sweep sends. 22 messages of 24 MB in one digest exceeded what PostgreSQL accepts.
MAX_DIGEST_MESSAGES = 30
MAX_DIGEST_TEXT_CHARS = 200_000

# A digest task that wakes a moment before its message is old enough (the web host's clock
# a little ahead of the worker's) still sends instead of leaving it to the sweep.
DUE_SLACK = timedelta(seconds=1)


@dataclass
class BatchDecision:
    """What one batch decided: emails written, threads to look at again, threads held elsewhere."""

    outbox_ids: list[int] = field(default_factory=list)
    next_due: dict[int, datetime] = field(default_factory=dict)
    busy: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Owed:
    thread: Thread
    contact: Contact
    address: str
    messages: list[Message]
    more: int = 0  # owed beyond this digest's messages


def deliverable_address(contact: Contact) -> ContactAddress | None:
    """The first verified, non-bouncing address of the contact."""
    return next((a for a in contact.addresses if a.verified and not a.bouncing), None)


def plan_digest_batch(
    session: Session,
    settings: Settings,
    thread_ids: Sequence[int],
    now: datetime,
    *,
    wait: bool = False,
    summaries: Collection[int] | None = None,
) -> BatchDecision:
    """Write every digest due in these threads in the caller's transaction; never commits.

    `wait=True` waits for threads another transaction holds instead of reporting them busy.
    Rule 7: contacts who chose "each message" get their digests here; a daily-summary run
    passes `summaries`, the contacts whose time has come, who get everything owed at once;
    paused contacts get nothing.
    """
    decision = BatchDecision()
    wanted = sorted(set(thread_ids))
    threads = lock_threads(session, wanted, wait=wait)
    if len(threads) < len(wanted):
        decision.busy = _held_elsewhere(session, set(wanted) - {t.id for t in threads})
    owed = _owed_digests(session, threads, summaries)
    due: list[_Owed] = []
    for item in owed:
        if summaries is not None:
            due.append(item)
            continue
        due_at = item.messages[0].created_at + item.thread.business.notify_delay(settings.notify_delay_seconds)
        if due_at > now + DUE_SLACK:
            known = decision.next_due.get(item.thread.id)
            decision.next_due[item.thread.id] = due_at if known is None else min(known, due_at)
        else:
            due.append(item)
    if not due:
        return decision
    bodies = _bodies(session, due)
    due = [_windowed(item, bodies) for item in due]
    secrets = link_secrets(session, (item.contact.id for item in due), now)
    decision.outbox_ids = outbox.add_emails(session, settings, _emails(settings, due, now, bodies, secrets), now)
    _advance_notified(session, due)
    return decision


def record_unbuildable(session: Session, settings: Settings, thread_id: int, now: datetime, reason: str) -> list[int]:
    """The digests of this thread that could not be built, recorded as `failed` with `reason`.

    A digest that fails to build (not a database outage) would fail the same way on every
    try: retried by the sweep forever, it also held back every other digest of its thread.
    Each owed contact gets a failed outbox row (nothing is sent) and their notified cursor
    moves on, so the next message starts a fresh digest. Never commits.
    """
    threads = lock_threads(session, [thread_id], wait=True)
    due = [item for item in _owed_digests(session, threads) if item.messages[0].created_at <= now + DUE_SLACK]
    if not due:
        return []
    failed = outbox.add_failed_emails(
        session,
        settings,
        [
            _digest_email(item, (), _unbuildable)
            for item in due
        ],
        now,
        reason,
    )
    _advance_notified(session, due)
    return failed


def _digest_email(item: _Owed, message_ids: tuple[int, ...], render):  # type: ignore[no-untyped-def]
    """The outbox row of one contact's digest: one dedupe key per (thread, contact, newest
    message), whether it is sent or recorded as failed."""
    return outbox.NewEmail(
        business_id=item.thread.business_id,
        thread_id=item.thread.id,
        kind="digest",
        dedupe_key=f"digest:{item.thread.id}:{item.contact.id}:{item.messages[-1].id}",
        recipient_kind="contact",
        recipient_id=item.contact.id,
        recipient_email=item.address,
        subject=compose.subject_for(item.thread),
        message_ids=message_ids,
        render=render,
    )


def _unbuildable(message_id: str):  # type: ignore[no-untyped-def]
    raise RuntimeError("an unbuildable digest is never rendered")


def _bodies(session: Session, due: Sequence[_Owed]) -> dict[int, str]:
    """The text of the messages digests may show, each read only up to what an email
    carries: a message of megabytes is never loaded whole."""
    wanted = sorted({m.id for item in due for m in item.messages[:MAX_DIGEST_MESSAGES]})
    limit = compose.MAX_EMAIL_MESSAGE_CHARS + 1
    return dict(session.execute(select(Message.id, func.substr(Message.body, 1, limit)).where(Message.id.in_(wanted))).all())


def _windowed(item: _Owed, bodies: dict[int, str]) -> _Owed:
    """The owed messages one digest holds (the oldest first, at least one), and how many wait."""
    shown: list[Message] = []
    chars = 0
    for message in item.messages[:MAX_DIGEST_MESSAGES]:
        size = min(len(bodies.get(message.id, "")), compose.MAX_EMAIL_MESSAGE_CHARS)
        if shown and chars + size > MAX_DIGEST_TEXT_CHARS:
            break
        shown.append(message)
        chars += size
    return _Owed(item.thread, item.contact, item.address, shown, len(item.messages) - len(shown))


def lock_threads(session: Session, thread_ids: Sequence[int], *, wait: bool, active_only: bool = True) -> list[Thread]:
    """The (active) threads among these, with what rendering needs, locked for this transaction.

    PostgreSQL takes row locks (skipping rows held elsewhere unless `wait`); SQLite's
    `BEGIN IMMEDIATE` already serialises writers.
    """
    if not thread_ids:
        return []
    query = (
        select(Thread)
        .options(
            selectinload(Thread.family).selectinload(Family.contacts).selectinload(Contact.addresses),
            selectinload(Thread.family).selectinload(Family.pets),
            selectinload(Thread.business),
        )
        .where(Thread.id.in_(thread_ids))
        .order_by(Thread.id)
    )
    if active_only:
        query = query.where(Thread.active)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Thread, skip_locked=not wait)
    return list(session.scalars(query))


def _held_elsewhere(session: Session, missing: set[int]) -> list[int]:
    """Of the threads the lock skipped, those that exist and are active (not merely gone)."""
    return sorted(session.scalars(select(Thread.id).where(Thread.id.in_(missing), Thread.active)))


def _emailed_now(contact: Contact, summaries: Collection[int] | None) -> bool:
    """Rule 7: whether this run emails the contact (each message; or their summary is due)."""
    if summaries is None:
        return contact.email_choice == "each"
    return contact.email_choice == "daily" and contact.id in summaries


def _owed_digests(session: Session, threads: Sequence[Thread], summaries: Collection[int] | None = None) -> list[_Owed]:
    """Per deliverable contact of these threads, the messages owed to them, oldest first.

    Three queries for the whole batch: both kinds of cursors, then every message above the
    lowest position of any contact of its thread (grouped by that position, so a busy
    thread's history is never read).
    """
    reachable = [
        (thread, contact, address.email)
        for thread in threads
        for contact in thread.family.contacts
        if _emailed_now(contact, summaries) and (address := deliverable_address(contact)) is not None
    ]
    if not reachable:
        return []
    floors = _positions(session, {thread.id for thread, _c, _a in reachable})
    lowest: dict[int, int] = {}
    for thread, contact, _address in reachable:
        position = floors.get((thread.id, contact.id), 0)
        lowest[thread.id] = min(lowest.get(thread.id, position), position)
    by_floor: dict[int, list[int]] = defaultdict(list)
    for thread_id, position in lowest.items():
        by_floor[position].append(thread_id)
    messages = session.scalars(
        select(Message)
        .options(
            # The texts are read apart, cut to what an email carries (`_bodies`).
            defer(Message.body),
            defer(Message.trimmed),
            defer(Message.html),
            selectinload(Message.attachments),
            selectinload(Message.staff),
            selectinload(Message.contact),
        )
        .where(
            or_(*(and_(Message.thread_id.in_(ids), Message.id > floor) for floor, ids in sorted(by_floor.items()))),
            Message.author_type != "system",
            parent_visible(),  # rule 8: an internal note is never in a digest
        )
        .order_by(Message.thread_id, Message.id)
    ).all()
    per_thread: dict[int, list[Message]] = defaultdict(list)
    for message in messages:
        per_thread[message.thread_id].append(message)
    owed = []
    for thread, contact, address in reachable:
        floor = floors.get((thread.id, contact.id), 0)
        pending = [m for m in per_thread[thread.id] if m.id > floor and m.contact_id != contact.id]
        if pending:
            owed.append(_Owed(thread, contact, address, pending))
    return owed


def _positions(session: Session, thread_ids: set[int]) -> dict[tuple[int, int], int]:
    """(thread, contact) → the newer of their read and notified cursors."""
    positions: dict[tuple[int, int], int] = {}
    for model in (ReadCursor, NotifiedCursor):
        for thread_id, person_id, position in session.execute(
            select(model.thread_id, model.person_id, model.message_id).where(
                model.thread_id.in_(thread_ids), model.person_kind == "contact"
            )
        ):
            key = (thread_id, person_id)
            positions[key] = max(positions.get(key, 0), position)
    return positions


def _emails(
    settings: Settings, due: Sequence[_Owed], now: datetime, bodies: dict[int, str], secrets: dict[int, str]
) -> list[outbox.NewEmail]:
    # Both parents of a family are usually owed the same messages: show them once.
    shown: dict[tuple[int, ...], tuple[ShownMessage, ...]] = {}
    emails = []
    for item in due:
        key = tuple(m.id for m in item.messages)
        if key not in shown:
            shown[key] = compose.shown_messages(settings, item.messages, item.thread.business, bodies)
        emails.append(
            _digest_email(item, key, _renderer(settings, item, shown[key], now, secrets[item.contact.id]))
        )
    return emails


def _renderer(settings: Settings, item: _Owed, shown: tuple[ShownMessage, ...], now: datetime, secret: str):  # type: ignore[no-untyped-def]
    thread, contact = item.thread, item.contact
    # Every digest carries a freshly signed parent link (threads.parent_links).
    conversation = parent_url(settings, contact.id, link_key(secret, thread.reply_token), now=now)
    choice = f"{conversation}/emails"
    mailto = unsubscribe_address(settings.secret_key, contact.id, settings.reply_domain)

    def render(message_id: str):  # type: ignore[no-untyped-def]
        return render_digest(
            compose.envelope(
                settings,
                thread,
                from_name=compose.team_sender_name(thread.business, item.messages),
                to_name=contact.name,
                to_address=item.address,
                message_id=message_id,
                now=now,
            ),
            DigestContent(
                business_name=thread.business.name,
                family_name=thread.family.name,
                recipient_name=contact.name.split(" ", 1)[0] or contact.name,
                messages=shown,
                more_messages=item.more,
                conversation_url=conversation,
                choice_url=choice,
                unsubscribe_url=f"{conversation}/unsubscribe",
                unsubscribe_mailto=mailto,
                list_id=compose.list_id(thread.business, settings.reply_domain),
            ),
        )

    return render


def _advance_notified(session: Session, due: Sequence[_Owed]) -> None:
    """Every digest's notified cursor in one upsert; a cursor never moves backwards."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(NotifiedCursor)
    statement = statement.on_conflict_do_update(
        index_elements=[NotifiedCursor.thread_id, NotifiedCursor.person_kind, NotifiedCursor.person_id],
        set_={"message_id": statement.excluded.message_id, "updated_at": statement.excluded.updated_at},
        where=NotifiedCursor.message_id < statement.excluded.message_id,
    )
    moment = utcnow()
    session.execute(
        statement,
        [
            {
                "thread_id": item.thread.id,
                "person_kind": "contact",
                "person_id": item.contact.id,
                "message_id": item.messages[-1].id,
                "updated_at": moment,
            }
            for item in due
        ],
    )
