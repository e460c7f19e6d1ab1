"""The outbox: every email is a row first (committed), a send second, then a recorded outcome.

A row is written in the same transaction as the decision it carries (a digest's notified
cursor, an alert's `alerted_at`), so a crash after the commit loses nothing: the row waits
in `queued` until a worker claims it. Claiming is one conditional UPDATE that pushes
`next_attempt_at` a lease into the future, so two workers never send the same row at once;
a worker that dies mid-send leaves a row whose lease runs out and the sweep sends it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message

from sqlalchemy import and_, insert, select, update
from sqlalchemy.orm import Session, sessionmaker, undefer

from pawpost.settings import Settings
from outbound import ids, signing
from outbound.render import to_bytes
from outbound.transport import DeliveryError, PermanentFailure, Target, TemporaryFailure, open_connection
from threads.bounces import clear_contact_bouncing
from threads.directory_changes import touch_families
from threads.models import ContactAddress, OutboundEmail, Thread, outbound_email_messages
from threads.types import utcnow

logger = logging.getLogger(__name__)

# Longer than an SMTP send can take (transport timeout 30 s), so a live sender keeps its claim.
LEASE = timedelta(minutes=2)
# A batch starts no send after this long: the last send (one SMTP timeout, two with a
# reconnect) and the commit of the batch's outcomes still end inside the lease.
SEND_WINDOW = LEASE / 4
MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
# An email bigger than this is never queued (its row is `failed` with the reason): no
# relay takes it, and PostgreSQL refuses a statement over 1 GB. Digests stay far below
# (their text and images are capped); this bounds whatever slips through.
MAX_EMAIL_BYTES = 24 * 1024 * 1024


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min… capped at an hour: ten attempts span about five hours."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_RETRY)


@dataclass(frozen=True)
class NewEmail:
    """One email to queue: who it goes to, what it carries, and how to render it.

    `render` gets the email's Message-ID, which names the outbox row, so it runs once the
    row has its id.
    """

    business_id: int
    thread_id: int | None
    kind: str
    dedupe_key: str
    recipient_kind: str
    recipient_id: int
    recipient_email: str
    subject: str
    message_ids: Sequence[int]
    render: Callable[[str], Message]


def add_emails(session: Session, settings: Settings, emails: Sequence[NewEmail], now: datetime) -> list[int]:
    """Write queued emails in a few statements whatever their number; their ids, in order.

    One multi-row INSERT … RETURNING gives the ids, rendering follows (the Message-ID holds
    the id), then one executemany UPDATE stores each email and one INSERT its message links.
    An email that cannot be rendered, or renders over MAX_EMAIL_BYTES, would fail the same
    way on every try: its row is written `failed` with the reason instead, and the other
    emails go on.
    """
    return _add(session, settings, emails, now, None)


def add_failed_emails(
    session: Session, settings: Settings, emails: Sequence[NewEmail], now: datetime, reason: str
) -> list[int]:
    """Record emails that could not be built as `failed` rows with `reason`; nothing is rendered or sent."""
    return _add(session, settings, emails, now, reason)


def _add(session: Session, settings: Settings, emails: Sequence[NewEmail], now: datetime, failed: str | None) -> list[int]:
    if not emails:
        return []
    tokens = [ids.new_token() for _ in emails]
    new_ids = list(
        session.scalars(
            insert(OutboundEmail).returning(OutboundEmail.id, sort_by_parameter_order=True),
            [
                {
                    "business_id": email.business_id,
                    "thread_id": email.thread_id,
                    "kind": email.kind,
                    "dedupe_key": email.dedupe_key,
                    "recipient_kind": email.recipient_kind,
                    "recipient_id": email.recipient_id,
                    "recipient_email": email.recipient_email,
                    "message_id_header": ids.placeholder_message_id(token, settings.mail_domain),
                    "subject": email.subject[:1000],
                    "up_to_message_id": max(email.message_ids) if email.message_ids else None,
                    "state": "queued",
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                }
                for email, token in zip(emails, tokens, strict=True)
            ],
        )
    )
    finished = []
    for email, token, outbox_id in zip(emails, tokens, new_ids, strict=True):
        message_id = ids.outbox_message_id(outbox_id, token, settings.mail_domain)
        raw, reason = (None, failed) if failed is not None else _rendered(email, message_id, settings)
        finished.append(
            {
                "id": outbox_id,
                "message_id_header": message_id,
                "raw": raw,
                "state": "queued" if reason is None else "failed",
                "last_error": None if reason is None else reason[:1000],
                "next_attempt_at": now if reason is None else None,
            }
        )
        if reason is not None:
            logger.warning("%s email %d not sent: %s", email.kind, outbox_id, reason)
    session.execute(update(OutboundEmail), finished)
    links = [
        {"outbound_email_id": outbox_id, "message_id": message_id}
        for email, outbox_id in zip(emails, new_ids, strict=True)
        for message_id in email.message_ids
    ]
    if links:
        session.execute(insert(outbound_email_messages), links)
    return new_ids


def _rendered(email: NewEmail, message_id: str, settings: Settings) -> tuple[bytes | None, str | None]:
    """(the email's bytes, DKIM-signed when a key is configured, None), or (None, why it cannot be sent)."""
    try:
        raw = signing.sign(settings, to_bytes(email.render(message_id)))
    except (MemoryError, RecursionError, ValueError, TypeError, LookupError, UnicodeError) as error:
        return None, f"could not be built ({type(error).__name__})"
    if len(raw) > MAX_EMAIL_BYTES:
        return None, f"too big to send ({len(raw)} bytes, the limit is {MAX_EMAIL_BYTES})"
    return raw, None


def add_email(
    session: Session,
    settings: Settings,
    thread: Thread,
    *,
    kind: str,
    dedupe_key: str,
    recipient_kind: str,
    recipient_id: int,
    recipient_email: str,
    subject: str,
    message_ids: Sequence[int],
    now: datetime,
    render: Callable[[str], Message],
) -> int:
    """Write one queued email (alerts, escalations); its outbox id."""
    email = NewEmail(
        business_id=thread.business_id,
        thread_id=thread.id,
        kind=kind,
        dedupe_key=dedupe_key,
        recipient_kind=recipient_kind,
        recipient_id=recipient_id,
        recipient_email=recipient_email,
        subject=subject,
        message_ids=message_ids,
        render=render,
    )
    return add_emails(session, settings, [email], now)[0]


def dedupe_keys_taken(session: Session, keys: Iterable[str]) -> set[str]:
    wanted = list(keys)
    if not wanted:
        return set()
    return set(session.scalars(select(OutboundEmail.dedupe_key).where(OutboundEmail.dedupe_key.in_(wanted))))


@dataclass
class Delivery:
    """What one delivery round did, for logs, tasks (retries) and tests."""

    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    retry: dict[int, timedelta] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Claimed:
    id: int
    recipient_kind: str
    recipient_id: int
    recipient_email: str
    raw: bytes
    attempts: int


def deliver(
    sessions: sessionmaker[Session],
    settings: Settings,
    target: Target,
    outbox_ids: Sequence[int],
    *,
    clock: Callable[[], datetime] = utcnow,
) -> Delivery:
    """Claim these rows, send them over one connection, record the outcomes in one commit.

    The sends happen outside any transaction. Recording the batch's outcomes together (one
    UPDATE for everything the relay accepted) instead of one commit per email is what lets
    a worker keep up with its relay; the price is the window between the relay's `250` and
    that commit: a worker dying inside it leaves rows it did send `queued` under its lease,
    and the sweep sends those again once the lease runs out. The window is one batch (at
    most `SEND_WINDOW` long), never more than the lease.
    """
    report = Delivery()
    with sessions() as session, session.begin():
        claimed = _claim(session, outbox_ids, clock())
        blocked = _bouncing(session, claimed)
        for row in claimed:
            if row.id in blocked:
                _record_not_sent(session, row.id, blocked[row.id], clock())
                report.failed.append(row.id)
    report.skipped = sorted(set(outbox_ids) - {row.id for row in claimed})
    to_send = [row for row in claimed if row.id not in blocked]
    if not to_send:
        return report
    outcomes = _Outcomes()
    try:
        with open_connection(target) as connection:
            started = time.monotonic()
            for position, row in enumerate(to_send):
                if time.monotonic() - started > SEND_WINDOW.total_seconds():
                    # The lease must outlast the sends and their commit: leave the rest.
                    outcomes.released = [later.id for later in to_send[position:]]
                    break
                sent_at = time.perf_counter()
                try:
                    connection.send(ids.verp_sender(row.id, settings.reply_domain, settings.secret_key), row.recipient_email, row.raw)
                except DeliveryError as error:
                    outcomes.failures.append((row, error))
                else:
                    outcomes.sent.append(row.id)
                    outcomes.accepted.append((row, clock()))
                    # One line per email, for operators: never the address or the body.
                    logger.info(
                        "outbound sent outbox=%d to=%s bytes=%d ms=%d",
                        row.id,
                        row.recipient_kind,
                        len(row.raw),
                        int((time.perf_counter() - sent_at) * 1000),
                    )
    finally:
        # Whatever stopped the loop, what the relay accepted is recorded.
        _record_outcomes(sessions, outcomes, clock(), report)
    return report


@dataclass
class _Outcomes:
    sent: list[int] = field(default_factory=list)
    # (row, when the relay accepted it): a bounce flag older than that acceptance clears.
    accepted: list[tuple[_Claimed, datetime]] = field(default_factory=list)
    failures: list[tuple[_Claimed, DeliveryError]] = field(default_factory=list)
    released: list[int] = field(default_factory=list)


def _record_outcomes(sessions: sessionmaker[Session], outcomes: _Outcomes, now: datetime, report: Delivery) -> None:
    if not (outcomes.sent or outcomes.failures or outcomes.released):
        return
    with sessions() as session, session.begin():
        if outcomes.sent:
            session.execute(
                update(OutboundEmail)
                .where(OutboundEmail.id.in_(outcomes.sent))
                .values(state="sent", sent_at=now, last_error=None, next_attempt_at=None)
            )
            for row, accepted_at in outcomes.accepted:
                if row.recipient_kind == "contact":
                    clear_contact_bouncing(session, row.recipient_id, row.recipient_email, flagged_before=accepted_at)
        if outcomes.released:
            # Not tried: give the attempt back and let the next delivery claim them at once.
            session.execute(
                update(OutboundEmail)
                .where(OutboundEmail.id.in_(outcomes.released), OutboundEmail.state == "queued")
                .values(next_attempt_at=now, attempts=OutboundEmail.attempts - 1)
            )
        for row, error in outcomes.failures:
            _record_failure(session, row, error, now, report)
    report.sent += outcomes.sent
    report.retry.update(dict.fromkeys(outcomes.released, timedelta(0)))


def _claim(session: Session, outbox_ids: Sequence[int], now: datetime) -> list[_Claimed]:
    if not outbox_ids:
        return []
    claimed_ids = list(
        session.scalars(
            update(OutboundEmail)
            .where(
                OutboundEmail.id.in_(list(outbox_ids)),
                OutboundEmail.state == "queued",
                OutboundEmail.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + LEASE, attempts=OutboundEmail.attempts + 1)
            .returning(OutboundEmail.id)
        )
    )
    if not claimed_ids:
        return []
    rows = session.scalars(
        select(OutboundEmail).options(undefer(OutboundEmail.raw)).where(OutboundEmail.id.in_(claimed_ids)).order_by(OutboundEmail.id)
    ).all()
    return [
        _Claimed(r.id, r.recipient_kind, r.recipient_id, r.recipient_email, r.raw or b"", r.attempts)
        for r in rows
    ]


def _bouncing(session: Session, claimed: Sequence[_Claimed]) -> dict[int, str]:
    """Rows addressed to a contact address marked bouncing since they were queued."""
    contact_rows = [row for row in claimed if row.recipient_kind == "contact"]
    if not contact_rows:
        return {}
    found = session.execute(
        select(ContactAddress.contact_id, ContactAddress.email, ContactAddress.bounce_reason).where(
            ContactAddress.bouncing,
            ContactAddress.contact_id.in_({row.recipient_id for row in contact_rows}),
        )
    ).all()
    reasons = {(contact_id, email): reason for contact_id, email, reason in found}
    blocked = {}
    for row in contact_rows:
        key = (row.recipient_id, row.recipient_email)
        if key in reasons:
            blocked[row.id] = f"not sent: the address is bouncing ({reasons[key] or 'no reason recorded'})"
    return blocked


def _record_not_sent(session: Session, outbox_id: int, reason: str, now: datetime) -> None:
    session.execute(
        update(OutboundEmail)
        .where(OutboundEmail.id == outbox_id)
        .values(state="failed", last_error=reason[:1000], next_attempt_at=None)
    )


def _record_failure(session: Session, row: _Claimed, error: DeliveryError, now: datetime, report: Delivery) -> None:
    text = str(error)[:1000]
    if isinstance(error, TemporaryFailure) and row.attempts < MAX_ATTEMPTS:
        delay = retry_delay(row.attempts)
        session.execute(
            update(OutboundEmail).where(OutboundEmail.id == row.id).values(last_error=text, next_attempt_at=now + delay)
        )
        report.retry[row.id] = delay
        logger.warning("outbox %d: temporary failure (attempt %d), retry in %s: %s", row.id, row.attempts, delay, text)
        return
    bad_address = isinstance(error, PermanentFailure) and error.bad_address
    session.execute(
        update(OutboundEmail)
        .where(OutboundEmail.id == row.id)
        .values(state="bounced" if bad_address else "failed", last_error=text, next_attempt_at=None)
    )
    if bad_address and row.recipient_kind == "contact":
        this_address = and_(ContactAddress.contact_id == row.recipient_id, ContactAddress.email == row.recipient_email)
        session.execute(update(ContactAddress).where(this_address).values(bouncing=True, bounced_at=now, bounce_reason=text[:500]))
        touch_families(session, this_address, now)
    report.failed.append(row.id)
    logger.warning("outbox %d: not delivered: %s", row.id, text)


def due_outbox_ids(session: Session, now: datetime, limit: int = 1000) -> list[int]:
    """Queued rows whose retry time came or whose sender's lease ran out."""
    return list(
        session.scalars(
            select(OutboundEmail.id)
            .where(OutboundEmail.state == "queued", OutboundEmail.next_attempt_at <= now)
            .order_by(OutboundEmail.next_attempt_at, OutboundEmail.id)
            .limit(limit)
        )
    )
