"""Inbound's huey tasks: process a stored email, and repair lost queue pushes.

They live on the one huey instance of `outbound.queue` (outbound never imports inbound,
so inbound registers its own tasks; `pawpost/cli.py` imports this module so every
`pawpost` process, the worker included, knows them). Tasks take the row id only and
decide everything when they run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from huey import crontab
from huey.storage import MemoryStorage
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from inbound.ingest import process_stored_email, process_stored_emails
from inbound.parse import UnparseableEmail, parse_email
from outbound.queue import configured_settings, huey, session_factory
from pawpost.settings import Settings
from threads.models import InboundEmail
from threads.types import utcnow

logger = logging.getLogger(__name__)

# A parent's email leads to staff alerts "at once": as urgent as outbound's alerts.
PRIORITY_INBOUND = 30
# A row still `received` this long after the 250 lost its push (a normal one is
# processed within about a second); the repair step runs every minute.
STUCK_AFTER = timedelta(seconds=30)
REPAIR_LIMIT = 500
REPAIR_SECONDS = 60
# Emails one `process_inbound_batch` task processes in place; a bigger batch is split into
# tasks of this size. Small enough that a burst still spreads over every worker thread,
# large enough that the queue round trip and the task's own overhead are shared.
BATCH_CHUNK = 4


@huey.on_startup()
def load_email_parser() -> None:
    """Import the MIME parser (flanker: ~0.2 s of CPU, seconds of wall time on a busy host)
    as each worker starts, not on the first email it is handed."""
    try:
        parse_email(b"From: warm-up@pawpost.invalid\r\nSubject: warm-up\r\n\r\nwarm-up\r\n")
    except UnparseableEmail:
        pass


@huey.task(priority=PRIORITY_INBOUND, retries=3, retry_delay=5)
def process_inbound_email(inbound_email_id: int) -> None:
    """Parse, route and act on one stored email; a no-op once it is past `received`."""
    process_stored_email(session_factory(), configured_settings(), inbound_email_id)


@huey.task(priority=PRIORITY_INBOUND, retries=3, retry_delay=5)
def process_inbound_batch(inbound_email_ids: list[int]) -> None:
    """One push for every email the SMTP server committed within its pusher's linger.

    The SMTP server's CPU is what its senders wait for; one queue round trip for many
    commits instead of one per email keeps it there. Here the batch is split into chunks
    of at most BATCH_CHUNK, each its own task, so the emails still spread over every
    worker thread and process; a chunk is processed in place, one email after the other:
    one queue round trip and one task's overhead for several emails instead of each.
    """
    if len(inbound_email_ids) > BATCH_CHUNK:
        for start in range(0, len(inbound_email_ids), BATCH_CHUNK):
            process_inbound_batch(inbound_email_ids[start : start + BATCH_CHUNK])
        return
    process_chunk(session_factory(), configured_settings(), inbound_email_ids)


def process_chunk(sessions: sessionmaker[Session], settings: Settings, inbound_email_ids: Sequence[int]) -> None:
    """Process each email of a chunk on its own: one email's fault never touches the others.

    `process_stored_emails` takes the chunk's leases in one statement and records a lasting
    fault as `failed`; an email hit by a transient one (the database went away) goes to a
    task of its own with its own retries, and if even that push fails the repair step
    finds the email still `received`.
    """
    process_stored_emails(sessions, settings, inbound_email_ids, on_transient=_retry_alone)


def _retry_alone(inbound_email_id: int, error: BaseException) -> None:
    logger.warning("inbound %d hit a transient fault; retried in a task of its own", inbound_email_id, exc_info=error)
    try:
        process_inbound_email.schedule(args=(inbound_email_id,), delay=process_inbound_email.retry_delay)
    except Exception:
        logger.exception("re-queueing inbound %d failed; the repair step will enqueue it", inbound_email_id)


def queue_is_local() -> bool:
    """True when the queue lives in this process only (`memory://`: tests, a bare server).

    No consumer ever reads such a queue from another process, so whoever stores an email
    processes it in place instead of pushing it where nothing would run it.
    """
    return isinstance(huey.storage, MemoryStorage)


def dispatch(inbound_email_ids: Sequence[int], sessions: sessionmaker[Session], settings: Settings) -> None:
    """Hand just-committed emails to the worker. Never raises: the repair step finds them."""
    if queue_is_local():
        for inbound_email_id in inbound_email_ids:
            try:
                process_stored_email(sessions, settings, inbound_email_id)
            except Exception:
                logger.exception("processing inbound %d in place failed; it stays received", inbound_email_id)
        return
    try:
        if len(inbound_email_ids) == 1:
            process_inbound_email(inbound_email_ids[0])
        elif inbound_email_ids:
            process_inbound_batch(list(inbound_email_ids))
    except Exception:
        logger.exception("queue push failed for %d stored email(s); the repair step will enqueue them", len(inbound_email_ids))


def requeue_stuck(session: Session, now: datetime) -> list[int]:
    """Enqueue again the emails still `received` STUCK_AFTER after their 250; their ids.

    An email a live worker holds (its lease, `inbound.ingest.LEASE`, has not run out) is
    never among them: run beside that worker it would only be done twice. Once a worker
    died holding it, the lease runs out and the email comes back here. The oldest first,
    at most REPAIR_LIMIT per run. During a long backlog a row may be queued twice; the
    task is idempotent, and the lease keeps a second run from starting on it.
    """
    ids = list(
        session.scalars(
            select(InboundEmail.id)
            .where(
                InboundEmail.outcome == "received",
                InboundEmail.received_at < now - STUCK_AFTER,
                or_(InboundEmail.claimed_until.is_(None), InboundEmail.claimed_until <= now),
            )
            .order_by(InboundEmail.id)
            .limit(REPAIR_LIMIT)
        )
    )
    for inbound_email_id in ids:
        process_inbound_email(inbound_email_id)
    if ids:
        logger.warning("repair: %d stored email(s) were still unprocessed, enqueued again", len(ids))
    return ids


def claim_repair_slot(slot: int) -> bool:
    """True for exactly one caller per minute, however many consumers run the periodic task.

    Not `huey.lock_task`: without a TTL (SQLite, Redis < 7.4) a worker that died holding
    it would stop the repair for good; a key per slot cannot get stuck.
    """
    if not huey.put_if_empty(f"pawpost.inbound-repair.{slot}", "1"):
        return False
    huey.delete(f"pawpost.inbound-repair.{slot - 4}")
    return True


@huey.periodic_task(crontab(minute="*"), priority=PRIORITY_INBOUND)
def repair_stuck_emails() -> None:
    """Every minute, once across all workers: re-enqueue stored emails whose push was lost."""
    if not claim_repair_slot(int(time.time()) // REPAIR_SECONDS):
        return
    with session_factory()() as session:
        requeue_stuck(session, utcnow())
