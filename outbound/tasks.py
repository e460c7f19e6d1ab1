"""Every huey task of Pawpost. Tasks take ids, never rows, and decide at run time.

The functions without a decorator (`run_*`) are what the tasks do; tests and benchmarks
call them directly with a fake clock. Settings and the database come from
`outbound.queue.configure_queue`, never from the environment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from huey.api import TaskWrapper
from huey.storage import RedisStorage
from huey.utils import normalize_time
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from outbound import digests, notify, outbox, sweep
from outbound.links import attachment_url
from outbound.queue import configured_settings, huey, session_factory
from outbound.transport import parse_outbound_url
from outbound.webhook_alerts import queue_endpoint_disabled
from outbound.webhooks import send, signed_request
from pawpost.settings import Settings
from threads import email_choice
from threads.announcements import post_pending, unfinished_announcements
from threads.models import Business, Message, Thread, WebhookDelivery, WebhookEndpoint
from threads.types import utcnow
from threads.sealing import SealBroken, unseal
from threads.webhooks import Outcome, due_deliveries, record_attempt, with_links

logger = logging.getLogger(__name__)

# Higher runs first: an alert ("at once") overtakes a sweep's backlog of digests.
PRIORITY_ALERT = 30
PRIORITY_DUE = 20
PRIORITY_SWEEP = 10
BATCH = 50
# A thread another worker holds is usually free again within a second.
BUSY_RETRY_SECONDS = 1
SWEEP_SECONDS = 30

T = TypeVar("T")


def _transaction(work: Callable[[Session, Settings], T]) -> T:
    settings = configured_settings()
    with session_factory()() as session, session.begin():
        return work(session, settings)


def _deliver(outbox_ids: Sequence[int], now: datetime | None = None) -> outbox.Delivery:
    """Send rows just committed (or found due); schedule a retry for temporary failures.

    `now` (tests, benchmarks) freezes the clock the claims and outcomes are written with.
    """
    if not outbox_ids:
        return outbox.Delivery()
    settings = configured_settings()
    clock = utcnow if now is None else (lambda: now)
    target = parse_outbound_url(settings.outbound_url)
    report = outbox.deliver(session_factory(), settings, target, outbox_ids, clock=clock)
    by_delay: dict[timedelta, list[int]] = {}
    for outbox_id, delay in report.retry.items():
        by_delay.setdefault(delay, []).append(outbox_id)
    for delay, retry_ids in by_delay.items():
        _enqueue_quietly(
            lambda retry_ids=retry_ids, delay=delay: deliver_emails.schedule(args=(retry_ids,), delay=delay.total_seconds())
        )
    return report


def _enqueue_quietly(push: Callable[[], object]) -> None:
    """A failed push is logged, not raised: the sweep finds the work in the database."""
    try:
        push()
    except Exception:
        logger.exception("queue push failed; the sweep will catch up")


def _chunks(items: Sequence[int], size: int = BATCH) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# -- what the tasks do ---------------------------------------------------------------


def run_posted_message(message_id: int, now: datetime | None = None) -> None:
    """Alerts at once (contact messages), then the digest and escalation checks at their time."""
    moment = now or utcnow()
    found = _transaction(
        lambda session, _settings: session.execute(
            select(Message.thread_id, Message.author_type, Message.created_at, Business)
            .join(Thread, Thread.id == Message.thread_id)
            .join(Business, Business.id == Thread.business_id)
            .where(Message.id == message_id)
        ).first()
    )
    if found is None:
        logger.warning("message %s vanished before its notifications", message_id)
        return
    thread_id, author_type, created_at, business = found
    settings = configured_settings()
    if author_type == "contact":
        _deliver(_transaction(lambda session, settings: notify.plan_alerts(session, settings, message_id, moment)), now)
    _schedule_followups(
        thread_id,
        author_type,
        created_at,
        business.notify_delay(settings.notify_delay_seconds),
        business.escalation_delay(settings.escalate_after_minutes),
    )


def run_after_posts(posts: Sequence[notify.DecidedPost]) -> None:
    """What follows posts whose alerts were already decided in their posting transactions
    (the email ingest does, saving this task's own transaction and reads): send those
    alerts, then the digest and escalation checks at their time (the business's delays,
    read by the caller), all written to the schedule at once. Never reads the database."""
    alert_ids = [outbox_id for post in posts for outbox_id in post.alert_ids]
    if alert_ids:
        _enqueue_quietly(lambda: deliver_emails(alert_ids))
    checks = [
        check
        for post in posts
        for check in _followups(post.thread_id, post.author_type, post.created_at, post.digest_delay, post.escalation_delay)
    ]
    _enqueue_quietly(lambda: _schedule_all(checks))


# A task to run at a time: (task, its arguments, when, its priority or None).
_Timed = tuple[TaskWrapper, tuple[object, ...], datetime, int | None]


def _schedule_followups(
    thread_id: int, author_type: str, created_at: datetime, digest_delay: timedelta, escalation_delay: timedelta
) -> None:
    checks = _followups(thread_id, author_type, created_at, digest_delay, escalation_delay)
    _enqueue_quietly(lambda: _schedule_all(checks))


def _followups(
    thread_id: int, author_type: str, created_at: datetime, digest_delay: timedelta, escalation_delay: timedelta
) -> list[_Timed]:
    """The escalation check (a contact's post) and the digest check (anyone's but the system's)."""
    checks: list[_Timed] = []
    if author_type == "contact":
        checks.append((escalate_threads, ([thread_id],), created_at + escalation_delay, None))
    if author_type != "system":
        checks.append((send_thread_digests, (thread_id,), created_at + digest_delay, PRIORITY_DUE))
    return checks


def _schedule_all(checks: Sequence[_Timed]) -> None:
    """Run each `task(*args)` at its time, written straight to huey's schedule; on Redis
    every entry in one round trip (a pipeline of ZADDs, what `huey.add_schedule` sends one
    by one).

    `TaskWrapper.schedule` puts a future task on the queue instead; a consumer then pops
    it, finds it not due and writes it to the schedule: a queue round trip, a
    deserialisation and a serialisation more of the worker's CPU, for the two checks every
    post schedules. A task already due takes the queue, as `schedule` would.
    """
    now = normalize_time(None, 0, huey.utc)
    later = []
    for task, args, eta, priority in checks:
        due = normalize_time(eta, None, huey.utc)
        if due <= now:
            task.schedule(args=args, eta=eta, priority=priority)
        else:
            later.append(task.task_class(args, {}, eta=due, priority=priority))
    storage = huey.storage
    if len(later) > 1 and isinstance(storage, RedisStorage):
        with storage.conn.pipeline(transaction=False) as pipe:
            for task in later:
                pipe.zadd(storage.schedule_key, {huey.serialize_task(task): storage.convert_ts(task.eta)})
            pipe.execute()
        return
    for task in later:
        huey.add_schedule(task)


def run_digests(thread_ids: Sequence[int], now: datetime | None = None) -> list[int]:
    """Decide and send the digests of these threads, a batch per transaction.

    A batch that fails is decided again thread by thread, so one thread's fault never
    stops the rest; threads another worker holds are tried again shortly.
    """
    created: list[int] = []
    for batch in _chunks(list(dict.fromkeys(thread_ids))):
        moment = now or utcnow()
        try:
            decision = _transaction(lambda session, settings: digests.plan_digest_batch(session, settings, batch, moment))
        except Exception:
            logger.exception("digest batch of %d thread(s) failed; deciding them one by one", len(batch))
            decision = _digests_one_by_one(batch, moment)
        if now is None:
            _schedule_digests(decision)
        _deliver(decision.outbox_ids, now)
        created += decision.outbox_ids
    return created


def _transient(error: BaseException) -> bool:
    """A fault that retrying later can cure: the database went away or timed out."""
    if isinstance(error, OperationalError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def _digests_one_by_one(thread_ids: Sequence[int], now: datetime) -> digests.BatchDecision:
    """Each thread in its own transaction. A thread whose digests cannot be built (any
    fault but a database outage) gets them recorded `failed`, so the sweep does not retry
    it forever and its other parent's next digests go out."""
    total = digests.BatchDecision()
    for thread_id in thread_ids:
        try:
            one = _transaction(lambda session, settings: digests.plan_digest_batch(session, settings, [thread_id], now))
        except Exception as error:
            if _transient(error):
                logger.exception("digest decision for thread %s failed; the sweep retries it", thread_id)
                continue
            logger.exception("the digests of thread %s cannot be built; recorded as failed", thread_id)
            reason = f"digest could not be built ({type(error).__name__})"
            try:
                _transaction(lambda session, settings: digests.record_unbuildable(session, settings, thread_id, now, reason))
            except Exception:
                logger.exception("recording the unbuildable digests of thread %s failed; the sweep retries it", thread_id)
            continue
        total.outbox_ids += one.outbox_ids
        total.next_due.update(one.next_due)
        total.busy += one.busy
    return total


def _schedule_digests(decision: digests.BatchDecision) -> None:
    """A task at each thread's next due time, and a quick retry for threads held elsewhere."""
    for thread_id, due in decision.next_due.items():
        _enqueue_quietly(
            lambda thread_id=thread_id, due=due: send_thread_digests.schedule(args=(thread_id,), eta=due, priority=PRIORITY_DUE)
        )
    if decision.busy:
        busy = decision.busy
        _enqueue_quietly(lambda: send_digest_batch.schedule(args=(busy,), delay=BUSY_RETRY_SECONDS, priority=PRIORITY_DUE))


def run_alerts(message_ids: Sequence[int], now: datetime | None = None) -> list[int]:
    created: list[int] = []
    for message_id in message_ids:
        moment = now or utcnow()
        try:
            created += _transaction(lambda session, settings: notify.plan_alerts(session, settings, message_id, moment))
        except Exception:
            logger.exception("alert decision for message %s failed; the sweep retries it", message_id)
    _deliver(created, now)
    return created


def run_escalations(thread_ids: Sequence[int], now: datetime | None = None) -> list[int]:
    created: list[int] = []
    for thread_id in thread_ids:
        moment = now or utcnow()
        try:
            created += _transaction(lambda session, settings: notify.plan_escalation(session, settings, thread_id, moment))
        except Exception:
            logger.exception("escalation decision for thread %s failed; the sweep retries it", thread_id)
    _deliver(created, now)
    return created


def run_sweep(now: datetime | None = None) -> sweep.DueWork:
    """Find everything due in the database and enqueue it in batches."""
    moment = now or utcnow()
    due = _transaction(lambda session, settings: sweep.find_due(session, settings, moment))
    for batch in _chunks(due.alert_message_ids):
        alert_messages(batch)
    for batch in _chunks(due.digest_thread_ids):
        send_digest_batch(batch)
    for batch in _chunks(due.escalation_thread_ids):
        escalate_threads(batch)
    for batch in _chunks(due.outbox_ids):
        deliver_emails(batch)
    restart_announcements()
    push_webhooks(_transaction(lambda session, settings: due_deliveries(session, moment)))
    if due.total:
        logger.info(
            "sweep: %d digest thread(s), %d alert(s), %d escalation thread(s), %d unsent email(s)",
            len(due.digest_thread_ids),
            len(due.alert_message_ids),
            len(due.escalation_thread_ids),
            len(due.outbox_ids),
        )
    return due


def run_daily_summaries(now: datetime | None = None) -> list[int]:
    """Rule 7: the daily summaries whose local time has come, one transaction per thread batch.

    Each summary contact is marked done for their local day in the same transaction as
    their summary, so a summary is never sent twice, even across a DST fall-back.
    """
    moment = now or utcnow()
    due = _transaction(lambda session, settings: email_choice.due_summaries(session, moment))
    by_thread: dict[int, list[email_choice.DueSummary]] = {}
    for item in due:
        by_thread.setdefault(item.thread_id, []).append(item)
    created: list[int] = []
    for batch in _chunks(sorted(by_thread)):
        items = [item for thread_id in batch for item in by_thread[thread_id]]

        def work(session: Session, settings: Settings, batch: list[int] = batch, items=items) -> list[int]:  # type: ignore[no-untyped-def]
            decision = digests.plan_digest_batch(
                session, settings, batch, moment, wait=True, summaries={item.contact_id for item in items}
            )
            email_choice.mark_summarised(session, items)
            return decision.outbox_ids

        outbox_ids = _transaction(work)
        _deliver(outbox_ids, now)
        created += outbox_ids
    if due:
        logger.info("daily summaries: %d contact(s) due, %d email(s)", len(due), len(created))
    return created


def run_announcement(announcement_id: int, now: datetime | None = None, *, batch: int = 50) -> int:
    """Post an announcement's remaining families, a batch per transaction; how many were posted.

    Each family's message and its delivery mark commit together, so a worker killed here
    leaves exactly the unposted families for the next run (the sweep starts one)."""
    total = 0
    while True:
        moment = now or utcnow()
        posted = _transaction(
            lambda session, settings: post_pending(session, announcement_id, settings.mail_domain, moment, batch=batch)
        )
        if not posted:
            if total:
                logger.info("announcement %s: posted to %d famil(ies)", announcement_id, total)
            return total
        for message_id in posted:
            notify.message_posted(message_id)  # digests through the normal path
        total += len(posted)


def restart_announcements() -> list[int]:
    """Enqueue a worker for every announcement with families left (a crash stopped one)."""
    unfinished = _transaction(lambda session, _settings: unfinished_announcements(session))
    for announcement_id in unfinished:
        _enqueue_quietly(lambda announcement_id=announcement_id: post_announcement(announcement_id))
    return unfinished


def run_due_inline(due: sweep.DueWork, now: datetime | None = None) -> list[int]:
    """Do what a sweep found in this process instead of through the queue (tests, `now` fixed)."""
    created = run_alerts(due.alert_message_ids, now)
    created += run_digests(due.digest_thread_ids, now)
    created += run_escalations(due.escalation_thread_ids, now)
    _deliver(due.outbox_ids, now)
    return created


def claim_sweep_slot(slot: int, seconds: int) -> bool:
    """True for exactly one caller per sweep slot, however many consumers run.

    huey's `lock_task` would stay locked forever if a worker died holding it (no TTL on
    SQLite or Redis < 7.4); a key per slot cannot get stuck, the next slot has a new one.
    """
    if not huey.put_if_empty(f"pawpost.sweep.{seconds}.{slot}", "1"):
        return False
    huey.delete(f"pawpost.sweep.{seconds}.{slot - 4}")
    return True


def sweep_slot(now: datetime, seconds: int = SWEEP_SECONDS) -> int:
    return int(now.timestamp()) // seconds


# -- the tasks -------------------------------------------------------------------------


@huey.task(priority=PRIORITY_ALERT, retries=3, retry_delay=5)
def process_posted_message(message_id: int) -> None:
    run_posted_message(message_id)


@huey.task(priority=PRIORITY_DUE, retries=2, retry_delay=5)
def send_thread_digests(thread_id: int) -> None:
    run_digests([thread_id])


@huey.task(priority=PRIORITY_SWEEP)
def send_digest_batch(thread_ids: list[int]) -> None:
    run_digests(thread_ids)


@huey.task(priority=PRIORITY_ALERT)
def alert_messages(message_ids: list[int]) -> None:
    run_alerts(message_ids)


@huey.task(priority=PRIORITY_DUE)
def escalate_threads(thread_ids: list[int]) -> None:
    run_escalations(thread_ids)


@huey.task(priority=PRIORITY_DUE)
def post_announcement(announcement_id: int) -> None:
    run_announcement(announcement_id)


@huey.task(priority=PRIORITY_DUE)
def deliver_emails(outbox_ids: list[int]) -> None:
    _deliver(outbox_ids)


@huey.task(priority=PRIORITY_SWEEP)
def sweep_in_slot(slot: int, seconds: int = SWEEP_SECONDS) -> None:
    """Enqueued by every consumer's scheduler each `seconds`; runs once per slot in all."""
    if claim_sweep_slot(slot, seconds):
        run_sweep()
        run_daily_summaries()


# -- webhooks: one task per delivery, at the lowest priority (never ahead of emails) --------

PRIORITY_WEBHOOK = 5
# While one worker sends a delivery, others leave it alone this long (longer than a send).
WEBHOOK_LEASE = timedelta(seconds=60)


def run_webhook_delivery(delivery_id: int, now: datetime | None = None) -> timedelta | None:
    """Claim, send (outside any transaction), record; the delay before the retry, if any.

    An attempt that disables the endpoint (410 Gone, 3 days of failures) writes the admins'
    emails in the same transaction; they are sent after the commit."""
    moment = now or utcnow()

    def claim(session: Session, settings: Settings) -> tuple[str, str, str, str] | None:
        claimed = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= moment)
            .values(next_attempt_at=moment + WEBHOOK_LEASE)
        ).rowcount
        delivery = session.get(WebhookDelivery, delivery_id)
        if not claimed or delivery is None:
            return None
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None or not endpoint.active:
            return None
        return endpoint.url, endpoint.sealed_secret, delivery.event_id, delivery.payload

    found = _transaction(claim)
    if found is None:
        return None
    url, sealed, event_id, payload = found
    settings = configured_settings()
    try:
        secret = unseal(settings.secret_key, sealed)
    except SealBroken as error:
        outcome = Outcome(None, 0, f"not sent: {error}")
    else:
        # Attachment links are signed now, valid from this attempt on.
        body = with_links(payload, lambda attachment_id: attachment_url(settings, attachment_id))
        # Stamped with the real time of sending (not a test's clock): receivers refuse old stamps.
        outcome = send(signed_request(url, secret, event_id, body, utcnow().timestamp()), development=settings.development)

    def record(session: Session, settings: Settings) -> tuple[timedelta | None, list[int]]:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            return None, []
        recorded_at = now or utcnow()
        decision = record_attempt(session, delivery, outcome, recorded_at)
        emails = queue_endpoint_disabled(session, settings, delivery.endpoint, recorded_at) if decision.disabled else []
        return decision.retry_in, emails

    delay, emails = _transaction(record)
    logger.info("webhook delivery %s: %s in %d ms", delivery_id, outcome.status_code or "no answer", outcome.latency_ms)
    if emails:
        logger.warning("webhook endpoint of delivery %s disabled; %d admin email(s) queued", delivery_id, len(emails))
        _deliver(emails, now)
    if delay is not None and now is None:
        _enqueue_quietly(lambda: deliver_webhook.schedule(args=(delivery_id,), delay=delay.total_seconds()))
    return delay


@huey.task(priority=PRIORITY_WEBHOOK)
def deliver_webhook(delivery_id: int) -> None:
    run_webhook_delivery(delivery_id)


@huey.task(priority=PRIORITY_WEBHOOK)
def send_due_webhooks() -> None:
    """Pushed after a commit that wrote deliveries: each due one gets its own task."""
    push_webhooks(_transaction(lambda session, settings: due_deliveries(session, utcnow())))


def push_webhooks(delivery_ids: Sequence[int]) -> None:
    """After the commit that wrote them: one task each, so one slow receiver delays no other."""
    for delivery_id in delivery_ids:
        _enqueue_quietly(lambda delivery_id=delivery_id: deliver_webhook(delivery_id))
