"""What became of one stored email: the queue worker's half of the inbound pipeline.

The SMTP server has already stored the raw bytes (outcome `received`) and answered
`250`; here, in the worker, the email is parsed, classified, routed and acted on
(post, quarantine, auto-reply note, bounce, duplicate, loop), and the row gets its
outcome, all in one transaction. Running it twice changes nothing: a row already past
`received` is left alone (the row is locked first: `SELECT … FOR UPDATE` on PostgreSQL,
BEGIN IMMEDIATE on SQLite). The same Message-ID in the same thread is posted once, even
when ten copies are processed at the same moment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, partial
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Row, Select, Update, bindparam, case, exists, false, func, literal, literal_column, null, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, joinedload, load_only, object_session, sessionmaker

from inbound.bounces import record_bounce, signed_outbox
from inbound.classify import Kind, classify
from inbound.html_text import bounded_html
from inbound.parse import ParsedEmail, UnparseableEmail, parse_email
from inbound.reply_text import Reply, extract_reply
from inbound.route import (
    AuthorCheck,
    answered_up_to,
    bounce_outbox_id,
    find_author,
    thread_for_references,
    untrusted_sender,
)
from outbound.live import quarantine_changed
from outbound.notify import DecidedPost, alerts_decided, message_posted, plan_new_message_alerts, webhooks_due
from pawpost.settings import Settings
from threads.auto_replies import claim_daily_note, record_note
from threads.bounces import clear_bouncing, flagged_in_business
from threads.directory import contact_for_address, find_staff_by_email, normalise_email
from threads.errors import EmptyMessage
from threads.webhooks import email_quarantined
from threads.limits import cap_text
from threads.models import (
    Contact,
    ContactAddress,
    InboundEmail,
    Message,
    OutboundEmail,
    ReadCursor,
    Staff,
    Thread,
    WebhookEndpoint,
)
from threads.posting import Alongside, NewAttachment, post_message
from threads.reading import read_position
from threads.schedule import business_today, day_bounds, someone_scheduled
from threads.types import utcnow

logger = logging.getLogger(__name__)

# How long a worker holds a stored email it started on. Far longer than processing one
# email may take (2 s of CPU): the repair step re-queues an email only once its lease ran
# out, so a live worker's email is never run a second time beside it.
LEASE = timedelta(minutes=10)
# The window of the per-thread and per-sender rate limit (`Settings.inbound_rate_per_minute`).
# A stored email at most this big comes back with its lease, which a whole chunk takes in
# one statement (so a chunk's small emails are in memory together); a bigger one (up to
# the server's 25 MB) is read alone when its turn comes.
INLINE_RAW_BYTES = 1024 * 1024
RATE_WINDOW = timedelta(minutes=1)
RATE_LIMITED = "rate_limited"

# Outcomes that mean "this Message-ID was already handled here": a resend is a duplicate.
_HANDLED = ("posted", "quarantined", "auto_reply", "bounce", "loop", "rejected", "failed", "released", "discarded")
# The same as SQL literals: `IN ('posted', ...)` rendered once into the statements built
# once below, not a list expanded into bind parameters on every execution.
_HANDLED_SQL = tuple(literal_column(f"'{outcome}'") for outcome in _HANDLED)


@dataclass(frozen=True)
class AlertsDecided:
    """The staff alerts of a posted message, decided in the ingest's own transaction."""

    author_type: str
    created_at: datetime
    alert_ids: tuple[int, ...]
    digest_delay: timedelta  # the business's own delays (`Business.notify_delay`)
    escalation_delay: timedelta


@dataclass(frozen=True)
class Claimed:
    """A stored email this worker holds the lease on (`claim_emails`)."""

    envelope_from: str
    envelope_to: str
    raw: bytes | None  # None: bigger than INLINE_RAW_BYTES, read when its turn comes
    message_id_header: str | None


@dataclass(frozen=True)
class Outcome:
    """What became of one stored email."""

    outcome: str
    inbound_email_id: int
    thread_id: int | None
    message_id: int | None
    reason: str | None = None
    alerts: AlertsDecided | None = None  # None: outbound decides them in its own task


@dataclass(frozen=True)
class _Email:
    """The pure part of an email, computed once outside the transaction."""

    rcpt_tos: tuple[str, ...]
    parsed: ParsedEmail | None
    dedupe_id: str
    kind: str  # reply | auto_reply | bounce | loop (inbound.classify)
    reply: Reply | None  # the words to post, extracted before the write transaction
    reason: str | None
    summary: str | None
    failures: tuple[tuple[str, str, bool], ...]  # (address, status, permanent)


def email_dedupe_id(message_id: str | None, raw: bytes) -> str:
    """The Message-ID, or a hash of the raw bytes when the sender gave none (or a huge one)."""
    if message_id and len(message_id) <= 255:
        return message_id
    return f"sha256.{hashlib.sha256(raw).hexdigest()}@pawpost.invalid"


def is_transient(error: BaseException) -> bool:
    """A fault that retrying later can cure: the database went away or timed out."""
    if isinstance(error, OperationalError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def process_stored_email(
    session_factory: sessionmaker[Session], settings: Settings, inbound_email_id: int, now: datetime | None = None
) -> Outcome | None:
    """Act on one stored `received` email; None when it is gone, already processed, or held
    by a live worker (its lease has not run out).

    A transient database fault is raised (the row stays `received`; the task's retry or
    the repair step runs it again). Any other fault would fail the same way on every try,
    so the row is marked `failed` with the fault's type instead of looping forever.
    """
    faults: list[BaseException] = []
    [outcome] = process_stored_emails(
        session_factory, settings, [inbound_email_id], now, on_transient=lambda _id, error: faults.append(error)
    )
    if faults:
        raise faults[0]
    return outcome


def process_stored_emails(
    session_factory: sessionmaker[Session],
    settings: Settings,
    inbound_email_ids: Sequence[int],
    now: datetime | None = None,
    *,
    on_transient: Callable[[int, BaseException], None],
) -> list[Outcome | None]:
    """`process_stored_email` for each email of a chunk, in order; their outcomes.

    The chunk's leases are taken in one statement and its emails share one pooled
    connection, but each email is parsed, acted on and committed on its own: a lasting
    fault marks that one email `failed`, and one hit by a transient database fault gives
    its lease back and goes to `on_transient` (its outcome None) while the others go on.
    What follows the chunk's posts (their alerts, digest and escalation checks, live hints)
    is handed on once, after the last commit (`outbound.notify.alerts_decided`).
    """
    outcomes: list[Outcome | None] = []
    decided: list[DecidedPost] = []  # handed on together once the chunk is done
    try:
        _process_chunk(session_factory, settings, inbound_email_ids, now, on_transient, outcomes, decided)
    finally:
        alerts_decided(decided)
    return outcomes


def _process_chunk(
    session_factory: sessionmaker[Session],
    settings: Settings,
    inbound_email_ids: Sequence[int],
    now: datetime | None,
    on_transient: Callable[[int, BaseException], None],
    outcomes: list[Outcome | None],
    decided: list[DecidedPost],
) -> None:
    with ExitStack() as stack:
        try:
            sessions, connection = stack.enter_context(_one_connection(session_factory))
            claims = _claim(connection, sessions, inbound_email_ids, now or utcnow())
        except Exception as error:
            outcomes.extend(
                _fault(session_factory, i, error, time.perf_counter(), on_transient, held=False) for i in inbound_email_ids
            )
            return
        for inbound_email_id in inbound_email_ids:
            claim = claims.pop(inbound_email_id, None)  # its raw bytes go once it is done
            if claim is None:
                logger.debug("inbound %d is processed or held by another worker", inbound_email_id)
                outcomes.append(None)
                continue
            started = time.perf_counter()
            try:
                outcome = _process(sessions, settings, inbound_email_id, claim, now, started)
            except Exception as error:
                outcomes.append(_fault(session_factory, inbound_email_id, error, started, on_transient, held=True))
                continue
            finally:
                del claim
            outcomes.append(_after_commit(outcome, started, decided))


def _fault(
    session_factory: sessionmaker[Session],
    inbound_email_id: int,
    error: Exception,
    started: float,
    on_transient: Callable[[int, BaseException], None],
    *,
    held: bool,
) -> Outcome | None:
    """One email's fault: a lasting one is recorded as `failed`; a transient one (or one that
    could not even be recorded) gives the lease back and goes to `on_transient`."""
    if not is_transient(error):
        logger.error("inbound %d could not be processed; marked failed", inbound_email_id, exc_info=error)
        try:
            return _mark_failed(session_factory, inbound_email_id, f"processing error ({type(error).__name__})", started)
        except Exception as recording:
            error, held = recording, True
    if held:
        _release_claim(session_factory, inbound_email_id)  # the retry may start at once
    on_transient(inbound_email_id, error)
    return None


def _after_commit(outcome: Outcome | None, started: float, decided: list[DecidedPost]) -> Outcome | None:
    """Log the outcome and hand on what follows it (alerts, hints, webhooks); a post whose
    alerts were decided goes to `decided`, whose checks and hints leave together at the end
    of the chunk (minutes before they are due; a tab's hint a few milliseconds later).
    Never raises."""
    if outcome is None:
        return None
    logger.info(
        "inbound %s thread=%s inbound=%d ms=%d",
        outcome.outcome,
        outcome.thread_id,
        outcome.inbound_email_id,
        int((time.perf_counter() - started) * 1000),
    )
    if outcome.outcome == "posted" and outcome.message_id is not None:
        if outcome.alerts is not None and outcome.thread_id is not None:
            alerts = outcome.alerts
            decided.append(
                DecidedPost(
                    outcome.message_id,
                    outcome.thread_id,
                    alerts.author_type,
                    alerts.created_at,
                    alerts.alert_ids,
                    alerts.digest_delay,
                    alerts.escalation_delay,
                )
            )
        else:
            notify_posted(outcome.message_id)
    elif outcome.outcome == "quarantined":
        quarantine_changed(outcome.inbound_email_id)  # seniors' open tabs update the count
        webhooks_due()
    return outcome


def _process(
    sessions: Callable[[], Session],
    settings: Settings,
    inbound_email_id: int,
    claim: Claimed,
    now: datetime | None,
    started: float,
) -> Outcome | None:
    raw = claim.raw if claim.raw is not None else _read_raw(sessions, inbound_email_id)
    # Parse, classify and extract outside the write transaction: on SQLite it would
    # hold the one writer lock (and so every SMTP accept) for the whole extraction.
    email = _prepare(claim.envelope_from, claim.envelope_to, raw, claim.message_id_header, settings)
    del raw  # the parsed email holds what is needed; give the bytes back early
    for attempt in (1, 2):
        try:
            with sessions() as session, session.begin():
                return _ingest(session, settings, inbound_email_id, email, now or utcnow(), started)
        except IntegrityError:
            # A concurrent copy of the same email committed first (unique Message-ID per
            # thread); the second pass sees its row and records a duplicate.
            if attempt == 2:
                raise
    return None  # pragma: no cover  (the loop returns or raises)


def _read_raw(sessions: Callable[[], Session], inbound_email_id: int) -> bytes:
    """The raw bytes of an email too big to come back with its lease (the lease is held)."""
    with sessions() as session:
        return session.scalar(select(InboundEmail.raw).where(InboundEmail.id == inbound_email_id)) or b""


@contextmanager
def _one_connection(session_factory: sessionmaker[Session]) -> Iterator[tuple[Callable[[], Session], Connection | None]]:
    """Sessions on one pooled connection for a whole chunk: the leases and each email's
    ingest are transactions of their own, but one checkout (and one liveness check,
    `threads.db.lend_only_live_connections`) instead of one per transaction. A connection
    a fault invalidated is replaced on its next use."""
    bind = session_factory.kw.get("bind")
    if not isinstance(bind, Engine):
        yield session_factory, None
        return
    with bind.connect() as connection:
        yield partial(session_factory, bind=connection), connection


def _claim(
    connection: Connection | None, sessions: Callable[[], Session], inbound_email_ids: Sequence[int], now: datetime
) -> dict[int, Claimed]:
    """`claim_emails`; on PostgreSQL its one UPDATE runs in autocommit, which is the same
    short transaction without the BEGIN and COMMIT round trips around it."""
    if connection is None or connection.dialect.name != "postgresql":
        return claim_emails(sessions, inbound_email_ids, now)
    connection.execution_options(isolation_level="AUTOCOMMIT")
    try:
        found = connection.execute(_claim_statement(True), _claim_parameters(inbound_email_ids, now)).all()
        connection.commit()  # nothing to commit: ends SQLAlchemy's own record of the statement
    finally:
        if not connection.invalidated:
            connection.execution_options(isolation_level=connection.default_isolation_level)
    return _claimed(found)


def claim_email(session_factory: Callable[[], Session], inbound_email_id: int, now: datetime) -> Claimed | None:
    """`claim_emails` for one email: None when it is gone, processed or held by a live worker."""
    return claim_emails(session_factory, [inbound_email_id], now).get(inbound_email_id)


def claim_emails(session_factory: Callable[[], Session], inbound_email_ids: Sequence[int], now: datetime) -> dict[int, Claimed]:
    """Take the lease on each of these emails that is `received` and held by nobody; what
    is needed to process each, by id.

    An email that is gone, already processed, or held by a live worker (its lease has not
    run out) is left out: that worker finishes it, and a second run beside it would only
    repeat the work. One short write transaction, before any parsing.
    """
    with session_factory() as session, session.begin():
        # Core on the connection: the ORM's bulk-update path would add its own CPU for nothing here.
        found = session.connection().execute(_claim_statement(False), _claim_parameters(inbound_email_ids, now)).all()
    return _claimed(found)


def _claim_parameters(inbound_email_ids: Sequence[int], now: datetime) -> dict[str, object]:
    return {"inbound_ids": list(inbound_email_ids), "now": now, "until": now + LEASE}


def _claimed(found: Sequence[Row[Any]]) -> dict[int, Claimed]:
    return {row.id: Claimed(row.envelope_from, row.envelope_to, row.raw, row.message_id_header) for row in found}


@cache
def _claim_statement(postgresql: bool) -> Update:
    """The lease UPDATE, built once: every chunk runs it (the worker's per-email CPU is
    largely SQLAlchemy building statements, not PostgreSQL running them)."""
    returning: list[Any] = [
        InboundEmail.id,
        InboundEmail.envelope_from,
        InboundEmail.envelope_to,
        InboundEmail.message_id_header,
        # The size comes from the value's header (no TOAST read); a big email's bytes stay
        # in the table until its turn, so a chunk never holds several of them at once.
        case((func.length(InboundEmail.raw) <= INLINE_RAW_BYTES, InboundEmail.raw), else_=null()).label("raw"),
    ]
    if postgresql:
        # The lease's commit does not wait for its WAL to reach the disk (its transaction
        # only: `set_config(..., true)`). Lost in a database crash, a lease costs nothing:
        # the email is still `received`, so the repair step hands it out again (as it
        # would once the lease ran out), and every later commit of this worker (the
        # ingest's) flushes the WAL up to and including the lease anyway.
        returning.append(func.set_config("synchronous_commit", "off", True).label("lease_sync"))
    return (
        update(InboundEmail)
        .where(
            InboundEmail.id.in_(bindparam("inbound_ids", expanding=True)),
            InboundEmail.outcome == "received",
            or_(InboundEmail.claimed_until.is_(None), InboundEmail.claimed_until <= bindparam("now")),
        )
        .values(claimed_until=bindparam("until", type_=InboundEmail.claimed_until.type))
        .returning(*returning)
    )


def _release_claim(session_factory: sessionmaker[Session], inbound_email_id: int) -> None:
    """Give the lease back after a transient fault; if the database is still away, it expires."""
    try:
        with session_factory() as session, session.begin():
            session.execute(
                update(InboundEmail)
                .where(InboundEmail.id == inbound_email_id, InboundEmail.outcome == "received")
                .values(claimed_until=None)
            )
    except Exception:
        logger.info("inbound %d keeps its lease until it expires (database unavailable)", inbound_email_id)


def _mark_failed(session_factory: sessionmaker[Session], inbound_email_id: int, reason: str, started: float) -> Outcome | None:
    elapsed = int((time.perf_counter() - started) * 1000)
    with session_factory() as session, session.begin():
        thread_id = session.scalar(
            update(InboundEmail)
            .where(InboundEmail.id == inbound_email_id, InboundEmail.outcome == "received")
            .values(outcome="failed", reason=reason, processing_ms=elapsed)
            .returning(InboundEmail.thread_id)
        )
    return Outcome("failed", inbound_email_id, thread_id, None, reason)


def notify_posted(message_id: int) -> None:
    """Hand the message to outbound after the commit; a failed push is repaired by its sweep."""
    try:
        message_posted(message_id)
    except Exception:  # the message is committed; a lost push is found again by the sweep
        logger.exception("notifying message %d failed; the periodic sweep will catch up", message_id)


def storable(value: str) -> str:
    """Text both databases accept: PostgreSQL refuses NUL, and neither driver encodes the
    lone surrogates that undecodable header bytes become. Refusing such mail with a 451
    would make the sender retry it forever."""
    if value.isascii() and "\x00" not in value:
        return value
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def _optional(value: str | None) -> str | None:
    return storable(value) if value is not None else None


def _storable_email(parsed: ParsedEmail) -> ParsedEmail:
    """The parsed email with every field that reaches a query or a column made storable."""
    return dataclasses.replace(
        parsed,
        sender_address=_optional(parsed.sender_address),
        sender_name=storable(parsed.sender_name),
        message_id=_optional(parsed.message_id),
        in_reply_to=_optional(parsed.in_reply_to),
        references=tuple(storable(r) for r in parsed.references),
        subject=storable(parsed.subject),
        text=_optional(parsed.text),
        html=_optional(parsed.html),
        attachments=tuple(
            dataclasses.replace(
                a, filename=storable(a.filename), content_type=storable(a.content_type), content_id=_optional(a.content_id)
            )
            for a in parsed.attachments
        ),
        reported_message_id=_optional(parsed.reported_message_id),
    )


def parse_for_storage(raw: bytes) -> ParsedEmail:
    """`parse_email`, with every text made storable; raises `UnparseableEmail`."""
    return _storable_email(parse_email(raw))


def _prepare(envelope_from: str, envelope_to: str, raw: bytes, dedupe_id: str | None, settings: Settings) -> _Email:
    try:
        parsed: ParsedEmail | None = parse_for_storage(raw)
    except UnparseableEmail:
        parsed = None
    kind, reason, summary, failures = "reply", None, None, ()
    reply = None
    if parsed is not None:
        result = classify(
            parsed,
            reply_domain=settings.reply_domain,
            own_addresses=(settings.notifications_address,),
            envelope_sender=envelope_from,
        )
        kind, reason, summary = result.kind.value, result.reason, result.summary
        failures = tuple(
            (storable(f.address), storable(f.status or "unknown status"), f.permanent) for f in result.failed_recipients
        )
        if result.kind is Kind.BOUNCE and not failures and result.status:
            # A text report that names nobody we can read still says what became of the
            # one email its VERP address identifies: "" is that email's own recipient.
            failures = (("", result.status, result.status.startswith("5")),)
        if kind == "reply":
            reply = extract_parsed(parsed)
    return _Email(
        rcpt_tos=tuple(a for a in envelope_to.split(", ") if a),
        parsed=parsed,
        # Stored at accept time from the header block; the same id the parse finds.
        dedupe_id=dedupe_id or email_dedupe_id(parsed.message_id if parsed else None, raw),
        kind=kind,
        reply=reply,
        reason=reason,
        summary=summary,
        failures=failures,
    )


def _ingest(
    session: Session, settings: Settings, inbound_email_id: int, email: _Email, now: datetime, started: float
) -> Outcome | None:
    row, stored_thread = _locked_row(session, inbound_email_id, email.dedupe_id)
    if row is None or row.outcome != "received":
        return None  # another worker got here first
    thread, outbox = _target(session, row, stored_thread, email, settings.secret_key)
    business_id = thread.business_id if thread is not None else outbox.business_id if outbox is not None else row.business_id
    # The row's own changes wait for one flush (the post's, or the last): no query below
    # reads them, and each early flush was a round trip of its own.
    with session.no_autoflush:
        thread_id = thread.id if thread is not None else None
        if (row.business_id, row.thread_id) != (business_id, thread_id):  # unchanged: nothing to flush early
            row.business_id, row.thread_id = business_id, thread_id
        sender = ((email.parsed.sender_address or "")[:320] or None) if email.parsed is not None else None
        facts = _read_facts(session, row, email, thread, business_id, sender, now)
        message: Message | None = None
        if facts.original_id is not None:
            # Stored once: the resend keeps its envelope for the record, not a second copy
            # (`_write_outcome` empties `raw`).
            _finish(row, "duplicate", f"same Message-ID as inbound email {facts.original_id}", facts.original_posted_id)
        elif email.parsed is None:
            _finish(row, "failed", "unparseable: no email in the data")
        elif email.kind == "loop":
            # Mail Pawpost itself sent, coming back: acting on it would ping-pong forever.
            _finish(row, "loop", email.reason)
        elif email.kind == "bounce":
            _record_bounce(session, row, email, signed_outbox(outbox, email.rcpt_tos, settings.secret_key), business_id, now)
        elif thread is None:
            # Accepted for a thread that has since been deactivated: kept, never posted.
            _finish(row, "failed", "no active conversation for this email")
        elif email.kind == "auto_reply":
            _record_auto_reply(session, row, email, thread, now)
        else:
            message = _record_reply(session, settings, row, email, thread, now, sender, facts, started)
        if message is not None:  # its outcome was written by the post's own statement
            session.expunge(row)
        else:
            if email.parsed is not None:
                row.sender = sender
                row.subject = _subject(email.parsed)
            row.processing_ms = int((time.perf_counter() - started) * 1000)
            _write_outcome(session, row)
    alerts = _decide_alerts(session, settings, message, thread, now) if message is not None and thread is not None else None
    session.flush()
    posted = row.posted_message_id if row.outcome == "posted" else None
    return Outcome(row.outcome, row.id, row.thread_id, posted, row.reason, alerts if posted is not None else None)


# Everything the ingest changes on the stored row (and a duplicate's `raw`, emptied).
_OUTCOME_COLUMNS = ("business_id", "thread_id", "sender", "subject", "outcome", "reason", "posted_message_id", "processing_ms")


def _write_outcome(session: Session, row: InboundEmail) -> None:
    """The row's outcome in one UPDATE on the connection; the row then leaves the session.

    The unit of work's flush of this one row cost about twice the statement's CPU, and
    even with nothing left to write, a row changed through the ORM costs a flush's
    bookkeeping at the commit. Detached, the row keeps its values for the `Outcome`.
    """
    values = {f"row_{column}": getattr(row, column) for column in _OUTCOME_COLUMNS}
    session.connection().execute(_outcome_statement(row.outcome == "duplicate"), {"row_id": row.id, **values})
    session.expunge(row)


def _subject(parsed: ParsedEmail) -> str | None:
    return (parsed.subject or "")[:1000] or None


def _posted_outcome(posted_message_id: ColumnElement[int]) -> Update:
    """The stored row's outcome written with its post (`threads.posting.Alongside`): the
    columns of `_write_outcome`, the new message's id given as SQL."""
    return _outcome_update(False, posted_message_id)


@cache
def _outcome_statement(empty_raw: bool) -> Update:
    return _outcome_update(empty_raw)


def _outcome_update(empty_raw: bool, posted_message_id: ColumnElement[int] | None = None) -> Update:
    """UPDATE of the row `row_id`'s `_OUTCOME_COLUMNS` from `row_<column>` parameters (named
    apart from a post's own, `threads.posting`); a duplicate's `raw` emptied; a
    `posted_message_id` given as SQL replaces its parameter."""
    columns = InboundEmail.__table__.c
    values: dict[str, Any] = {column: bindparam(f"row_{column}", type_=columns[column].type) for column in _OUTCOME_COLUMNS}
    if posted_message_id is not None:
        values["posted_message_id"] = posted_message_id
    if empty_raw:
        values["raw"] = b""
    return update(InboundEmail).where(InboundEmail.id == bindparam("row_id")).values(values)


def _locked_row(session: Session, inbound_email_id: int, dedupe_id: str) -> tuple[InboundEmail | None, Thread | None]:
    """The stored row, locked (`SELECT … FOR UPDATE` on PostgreSQL; SQLite's BEGIN
    IMMEDIATE already holds the database), with the thread it was stored for and that
    thread's family and business (the author check reads the family, the alerts the
    business). On PostgreSQL the same statement takes the Message-ID's advisory lock, which
    serialises concurrent copies of one email: one round trip for what were three.

    Every ingest takes both locks in this one statement, so two runs always take them in
    the same order; the reads that need the locks (`_read_facts`) come in a later statement,
    whose snapshot is taken once both are held.
    """
    postgresql = session.get_bind().dialect.name == "postgresql"
    parameters: dict[str, object] = {"inbound_id": inbound_email_id}
    if postgresql:
        digest = hashlib.sha256(dedupe_id.encode("utf-8", "surrogateescape")).digest()
        parameters["key"] = int.from_bytes(digest[:8], "big", signed=True)
    found = session.execute(_locked_row_statement(postgresql), parameters).first()
    if found is None:
        return None, None
    return found[0], found[1]


@cache
def _locked_row_statement(advisory: bool) -> Select[Any]:
    # Of the stored row, only what the ingest reads: the columns it writes are set before
    # they are read, the raw bytes came with the lease, and a rare path that reads another
    # column (a quarantine's webhook event) loads it then. A dozen columns fewer for the
    # driver and the ORM to describe and load on every email.
    read = (InboundEmail.business_id, InboundEmail.thread_id, InboundEmail.received_at, InboundEmail.outcome)
    query = (
        select(InboundEmail, Thread)
        .outerjoin(Thread, Thread.id == InboundEmail.thread_id)
        .options(load_only(*read), joinedload(Thread.family), joinedload(Thread.business))
        .where(InboundEmail.id == bindparam("inbound_id"))
        .with_for_update(of=InboundEmail)
    )
    return query.add_columns(func.pg_advisory_xact_lock(bindparam("key"))) if advisory else query


@dataclass(frozen=True)
class _Facts:
    """What the ingest reads once its locks are held, in one round trip."""

    original_id: int | None = None  # an earlier handled copy of this Message-ID
    original_posted_id: int | None = None
    in_thread: int = 0  # emails into the thread in the minute before this one (the rate limit)
    from_sender: int = 0  # emails from the sender into the business, same minute
    someone_scheduled: bool = True  # some staff member may need an alert (rule 4)
    sender_flagged: bool = True  # the sender's address is flagged as bouncing (`clear_bouncing`)
    contact: Contact | None = None  # the family's contact with the sender's verified address
    has_webhooks: bool = True  # the business has an active webhook endpoint (`message.created` is looked for)


def _read_facts(
    session: Session,
    row: InboundEmail,
    email: _Email,
    thread: Thread | None,
    business_id: int | None,
    sender: str | None,
    now: datetime,
) -> _Facts:
    """The duplicate check, the rate limit's counts, whether anyone is scheduled with the
    family today, whether the sender's address is flagged, which contact of the family
    it verifies (`contact_for_address`) and whether the business has any active webhook
    endpoint (most have none: the post then looks for no `message.created` endpoint), in one statement (each was a round trip of its
    own, ~0.3 ms of the worker's CPU and the database's)."""
    if thread is None:
        if business_id is None:
            return _Facts()
        found = session.execute(_handled_statement(), {"dedupe_id": email.dedupe_id, "business_id": business_id}).first()
        return _Facts(found[0], found[1]) if found is not None else _Facts()
    business = thread.business
    start, end = day_bounds(business, business_today(business, now))
    address = email.parsed.sender_address if email.parsed is not None else None
    parameters = {
        "dedupe_id": email.dedupe_id,
        "inbound_id": row.id,
        "since": row.received_at - RATE_WINDOW,
        "thread_id": thread.id,
        "business_id": thread.business_id,
        "family_id": thread.family_id,
        "sender": sender,
        "address": normalise_email(address or ""),
        "start": start,
        "end": end,
    }
    found = session.execute(_facts_statement(bool(sender)), parameters).one()
    return _Facts(found[0], found[1], found[2], found[3], bool(found[4]), bool(found[5]), found[6], bool(found[7]))


@cache
def _handled_statement() -> Select[tuple[int, int | None]]:
    """The earlier handled copy of a Message-ID in the business (for an email with no thread)."""
    return (
        select(InboundEmail.id, InboundEmail.posted_message_id)
        .where(
            InboundEmail.message_id_header == bindparam("dedupe_id"),
            InboundEmail.business_id == bindparam("business_id"),
            InboundEmail.outcome.in_(_HANDLED_SQL),
        )
        .order_by(InboundEmail.id)
        .limit(1)
    )


@cache
def _facts_statement(by_sender: bool) -> Select[Any]:
    """`_read_facts`'s statement, built once (with no sender, the sender's count is 0 and no
    address is flagged)."""

    def handled(column: Any) -> Any:
        """The earlier handled copy of this Message-ID in the thread."""
        return (
            select(column)
            .where(
                InboundEmail.message_id_header == bindparam("dedupe_id"),
                InboundEmail.thread_id == bindparam("thread_id"),
                InboundEmail.outcome.in_(_HANDLED_SQL),
            )
            .order_by(InboundEmail.id)
            .limit(1)
            .scalar_subquery()
        )

    earlier = (
        InboundEmail.id < bindparam("inbound_id"),
        InboundEmail.received_at > bindparam("since"),
        InboundEmail.outcome != "duplicate",
    )
    in_thread = select(func.count()).where(InboundEmail.thread_id == bindparam("thread_id"), *earlier).scalar_subquery()
    from_sender = (
        select(func.count())
        .where(InboundEmail.sender == bindparam("sender"), InboundEmail.business_id == bindparam("business_id"), *earlier)
        .scalar_subquery()
    )
    # `contact_for_address`'s contact as a row of its own, joined to a one-row base.
    contact_id = (
        select(Contact.id)
        .join(ContactAddress, ContactAddress.contact_id == Contact.id)
        .where(Contact.family_id == bindparam("family_id"), ContactAddress.email == bindparam("address"), ContactAddress.verified)
        .limit(1)
        .scalar_subquery()
    )
    one_row = select(literal(1).label("one")).subquery()
    return (
        select(
            handled(InboundEmail.id),
            handled(InboundEmail.posted_message_id),
            in_thread,
            from_sender if by_sender else literal(0),
            someone_scheduled(),
            flagged_in_business() if by_sender else false(),
            Contact,
            exists().where(WebhookEndpoint.business_id == bindparam("business_id"), WebhookEndpoint.active.is_(True)),
        )
        .select_from(one_row)
        .outerjoin(Contact, Contact.id == contact_id if by_sender else false())
    )


def _finish(row: InboundEmail, outcome: str, reason: str | None, posted_message_id: int | None = None) -> None:
    row.outcome = outcome
    row.reason = storable(reason)[:1000] if reason else None
    row.posted_message_id = posted_message_id
    session = object_session(row)
    if outcome == "quarantined" and session is not None:
        session.flush()
        email_quarantined(session, row, utcnow())  # in the transaction that holds it


def _target(
    session: Session, row: InboundEmail, stored_thread: Thread | None, email: _Email, secret_key: str
) -> tuple[Thread | None, OutboundEmail | None]:
    """The thread (and the outbox row, for bounces) this email is about.

    The thread the server stored at accept time (`stored_thread`, read with the row) wins
    while it is active; otherwise the email's own In-Reply-To/References decide, as they
    did for a token-less recipient.
    """
    outbox_ids = [i for i in (bounce_outbox_id(a, secret_key) for a in email.rcpt_tos) if i is not None]
    outbox = session.get(OutboundEmail, outbox_ids[0]) if outbox_ids else None
    if stored_thread is not None and stored_thread.active:
        return stored_thread, outbox
    parsed = email.parsed
    if parsed is None:
        return None, outbox
    if outbox is None and parsed.reported_message_id:
        outbox = reported_outbox(session, parsed.reported_message_id)
    references = [parsed.in_reply_to or "", *reversed(parsed.references)]
    thread = thread_for_references(session, references)
    if thread is None and outbox is not None and outbox.thread_id is not None:
        thread = session.get(Thread, outbox.thread_id)
    return thread, outbox


def reported_outbox(session: Session, reported_message_id: str) -> OutboundEmail | None:
    """The outbox row a delivery report is about (its Message-ID is in the report)."""
    return session.scalar(
        select(OutboundEmail).where(OutboundEmail.message_id_header == reported_message_id.strip().strip("<>"))
    )


def _record_bounce(
    session: Session,
    row: InboundEmail,
    email: _Email,
    outbox: OutboundEmail | None,
    business_id: int | None,
    now: datetime,
) -> None:
    """A delivery report; see `inbound.bounces.record_bounce` for what it may mark."""
    _finish(row, "bounce", record_bounce(session, outbox, email.failures, now))


def _record_auto_reply(session: Session, row: InboundEmail, email: _Email, thread: Thread, now: datetime) -> None:
    """Stored, never posted; the thread gets one system note per sender per day."""
    sender = email.parsed.sender_address if email.parsed else None
    name = _known_name(session, thread, sender)
    if name is None:
        _finish(row, "auto_reply", f"{email.reason}; sender not on this thread, no note")
        return
    if not claim_daily_note(session, thread, sender or "", now):
        _finish(row, "auto_reply", f"{email.reason}; already noted today")
        return
    body = f"Auto-reply from {name}" + (f": {email.summary}" if email.summary else "")
    note = post_message(session, thread, None, storable(body)[:500], now=now)
    record_note(session, thread, sender or "", note.id, now)
    _finish(row, "auto_reply", email.reason, note.id)


def _known_name(session: Session, thread: Thread, sender: str | None) -> str | None:
    if not sender:
        return None
    contact = contact_for_address(session, thread.family, sender, verified_only=False)
    if contact is not None:
        return contact.name
    staff = find_staff_by_email(session, thread.business_id, sender)
    return staff.name if staff is not None else None


def _record_reply(
    session: Session,
    settings: Settings,
    row: InboundEmail,
    email: _Email,
    thread: Thread,
    now: datetime,
    sender: str | None,
    facts: _Facts,
    started: float,
) -> Message | None:
    """Post the reply (or hold or reject it); the message posted, if any, with the row's
    outcome written by the post's own statement (its `processing_ms` counted up to it)."""
    parsed = email.parsed
    assert parsed is not None
    refusal = untrusted_sender(parsed, settings.trusted_authserv_id)
    if refusal is not None:
        _finish(row, "quarantined", refusal)
        return None
    check = find_author(session, thread, parsed.sender_address, now, facts.contact)
    if check.author is None:
        _finish(row, "quarantined", check.reason)
        return None
    limited = rate_limit_reason(facts.in_thread, facts.from_sender, settings.inbound_rate_per_minute)
    if limited is not None:
        # Held, never dropped: a mail loop or a flood stops filling the thread, and the
        # quarantine review can still release any of it.
        logger.warning("inbound %d held: %s", row.id, limited)
        _finish(row, "quarantined", limited)
        return None
    # A copy that committed after our first look makes the insert below fail on the
    # unique (thread, Message-ID); `process_stored_email` retries and records a duplicate.
    # With nobody scheduled, a contact's message has no staff alert to decide: it is
    # recorded as decided in its own INSERT (what `plan_new_message_alerts` would conclude).
    decided = now if isinstance(check.author, Contact) and not facts.someone_scheduled else None
    outcome = {
        "row_id": row.id,
        "row_business_id": row.business_id,
        "row_thread_id": row.thread_id,
        "row_sender": sender,
        "row_subject": _subject(parsed),
        "row_outcome": "posted",
        "row_reason": None,
        "row_processing_ms": int((time.perf_counter() - started) * 1000),
    }
    try:
        message = post_parsed(
            session,
            thread,
            check,
            parsed,
            email.dedupe_id,
            now,
            email.reply,
            alerted_at=decided,
            webhooks=facts.has_webhooks,
            alongside=Alongside(_posted_outcome, outcome),
        )
    except EmptyMessage:
        _finish(row, "rejected", "empty reply")
        return None
    if facts.sender_flagged:  # mail from the address shows it works again: its bounce flag clears
        clear_bouncing(session, thread.business_id, parsed.sender_address or "")
    _finish(row, "posted", None, message.id)
    row.sender, row.subject, row.processing_ms = sender, outcome["row_subject"], outcome["row_processing_ms"]
    return message


def _decide_alerts(session: Session, settings: Settings, message: Message, thread: Thread, now: datetime) -> AlertsDecided | None:
    """Rule 4's alerts for the message just posted, in this transaction: the thread, family
    and author are at hand, so outbound's own task (a transaction that reloads them all) is
    saved. A fault here never costs the post: it is rolled back to a savepoint and the
    alerts are left to outbound (its task, or its sweep), as for any other post."""
    business = thread.business
    delays = (
        business.notify_delay(settings.notify_delay_seconds),
        business.escalation_delay(settings.escalate_after_minutes),
    )
    if message.author_type != "contact" or message.alerted_at is not None:  # staff, or nobody scheduled
        return AlertsDecided(message.author_type, message.created_at, (), *delays)
    try:
        with session.begin_nested():
            alert_ids = plan_new_message_alerts(session, settings, message, thread, now)
    except Exception:
        logger.exception("deciding the alerts of message %d failed; outbound decides them", message.id)
        return None
    return AlertsDecided(message.author_type, message.created_at, tuple(alert_ids), *delays)


def extract_parsed(parsed: ParsedEmail) -> Reply:
    """The words to post from a parsed email: CPU-bound, so never run inside a write transaction."""
    return extract_reply(parsed.text, parsed.html, sender=parsed.sender_name or parsed.sender_address)


def rate_limit_reason(in_thread: int, from_sender: int, per_minute: int) -> str | None:
    """Why this email is over the rate limit, or None: at most `per_minute` emails a minute
    into one thread, and from one sender into the business (Zulip's gateway value: 50).

    Counted (`_read_facts`) from the emails received in the minute before this one (by the
    time the server stored them, so a backlog processed late is judged as it arrived),
    whatever became of them: a loop or a flood is held for as long as it keeps coming.
    """
    if in_thread >= per_minute:
        return f"{RATE_LIMITED}: more than {per_minute} emails a minute into this conversation"
    if from_sender >= per_minute:
        return f"{RATE_LIMITED}: more than {per_minute} emails a minute from this sender"
    return None


def post_parsed(
    session: Session,
    thread: Thread,
    check: AuthorCheck,
    parsed: ParsedEmail,
    dedupe_id: str,
    now: datetime,
    reply: Reply | None = None,
    *,
    alerted_at: datetime | None = None,
    webhooks: bool = True,
    alongside: Alongside | None = None,
) -> Message:
    """Post the visible part of a parsed email as `check.author` and settle their read cursor.

    Shared by the ingest (which passes the `reply` it extracted before its transaction)
    and by quarantine release (`alerted_at`, `webhooks` and `alongside`: see `post_message`). Raises
    `EmptyMessage` when nothing visible is left,
    `IntegrityError` when this Message-ID is already in the thread. A visible text beyond
    `MAX_VISIBLE_TEXT` is cut and the message marked `truncated`; the raw email keeps it all.
    """
    author = check.author
    assert author is not None
    if reply is None:
        reply = extract_parsed(parsed)
    visible, cut = cap_text(reply.visible)
    trimmed, cut_trimmed = cap_text(reply.trimmed)
    attachments = [
        NewAttachment(
            filename=a.filename[:255] or "attachment",
            content_type=a.content_type[:255] or "application/octet-stream",
            content=a.content,
            content_id=a.content_id[:255] if a.content_id else None,
            inline=a.inline,
        )
        for a in parsed.attachments
    ]
    seen = answered_up_to(session, thread, parsed.in_reply_to)
    before = read_position(session, thread, author.person) if seen is not None else 0
    message = post_message(
        session,
        thread,
        author,
        visible,
        attachments,
        source="email",
        trimmed=trimmed or None,
        html=bounded_html(parsed.html) or None if parsed.html else None,  # "show original formatting"
        email_message_id=dedupe_id,
        truncated=cut or cut_trimmed or bool(getattr(reply, "truncated", False)),
        now=now,
        alerted_at=alerted_at,
        webhooks=webhooks,
        alongside=alongside,
    )
    settle_read_cursor(session, thread, author, message, before, seen)
    return message


def settle_read_cursor(
    session: Session, thread: Thread, author: Staff | Contact, message: Message, before: int, seen: int | None
) -> None:
    """Rule 2 for email replies: the author has read up to the newest message of the email
    they answered, not necessarily everything up to their own words.

    `post_message` moves the poster's cursor to their new message. When the email they
    answered (In-Reply-To → outbox row) stops short of messages others posted since,
    those were never in front of them: the cursor goes back to what they saw, so their
    next digest still carries them (their own message never counts as unread). With no
    known answered email, everything before their message counts as read.
    """
    if seen is None:
        return
    target = max(before, seen)
    if target >= message.id:
        return
    person = author.person
    author_column = Message.staff_id if person.kind == "staff" else Message.contact_id
    unseen_by_others = session.scalar(
        select(
            exists().where(
                Message.thread_id == thread.id,
                Message.id > target,
                Message.id < message.id,
                author_column.is_(None) | (author_column != person.id),
            )
        )
    )
    if not unseen_by_others:
        return
    session.execute(
        update(ReadCursor)
        .where(
            ReadCursor.thread_id == thread.id,
            ReadCursor.person_kind == person.kind,
            ReadCursor.person_id == person.id,
            ReadCursor.message_id == message.id,
        )
        .values(message_id=target)
    )
