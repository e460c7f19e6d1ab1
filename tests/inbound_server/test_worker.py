"""The worker's half: a real queue between `250` and the post, lost pushes, double runs.

Every other test here uses a `memory://` queue, which no other process can read, so the
server processes each email in place before answering. These use a queue a worker reads
(a huey SQLite file, or Redis), as production does: `250` means stored, and the post
follows when the worker runs the task.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from email.message import EmailMessage
from email.policy import SMTP

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from inbound.ingest import INLINE_RAW_BYTES, LEASE, Outcome, claim_email, process_stored_email, process_stored_emails
from inbound.server import running_smtp_server
from inbound.tasks import process_inbound_batch, process_inbound_email, queue_is_local, requeue_stuck
from outbound.live import local_broker
from outbound.queue import configure_queue, huey
from pawpost.settings import Settings
from tests.conftest import REDIS_URL, require
from tests.inbound_server import queries
from tests.inbound_server.conftest import Outage, World, make_settings
from tests.inbound_server.mail import reply_email, send
from threads.db import make_engine, make_session_factory
from threads.types import utcnow

WAIT_SECONDS = 20


def _redis_available() -> bool:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
        client.close()
        return True
    except Exception:  # no server, no driver: not available
        return False


@pytest.fixture(params=["sqlite-queue", "redis-queue"])
def worker_settings(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings whose queue a worker reads; the queue is emptied before and after."""
    if request.param == "redis-queue":
        require(_redis_available(), f"Redis unreachable at {REDIS_URL}")
        queue_url = REDIS_URL
    else:
        queue_url = f"sqlite:///{tmp_path / 'queue.sqlite3'}"
    settings = make_settings(database_url, tmp_path, PAWPOST_QUEUE_URL=queue_url)
    configure_queue(settings)
    huey.flush()  # only this queue's keys (Redis: the `pawpost` queue in the test db)
    assert not queue_is_local()
    yield settings
    huey.flush()
    configure_queue(make_settings(database_url, tmp_path))  # back to memory:// for the next test


def run_queued_tasks() -> int:
    """Run what the queue holds, as a consumer would (deterministic, in this thread)."""
    ran = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        ran += 1
    return ran


def test_250_means_stored_and_the_worker_posts_it(worker_settings: Settings, world: World, engine: Engine) -> None:
    raw = reply_email(world.primary_email, world.reply_to, message_id="<queued-1@parents.test>")
    with running_smtp_server(worker_settings) as (host, port):
        assert send(host, port, world.primary_email, world.reply_to, raw) == (250, "2.0.0 Message accepted")

    [row] = queries.inbound(engine)
    assert (row.outcome, row.thread_id, row.raw) == ("received", world.thread_id, raw)
    assert row.message_id_header == "queued-1@parents.test" and row.size == len(raw)
    assert queries.messages(engine, world.thread_id) == []

    assert run_queued_tasks() >= 1
    [message] = queries.messages(engine, world.thread_id)
    assert message.body == "Bella loved her walk, thank you!"
    [row] = queries.inbound(engine)
    assert (row.outcome, row.posted_message_id, row.sender) == ("posted", message.id, world.primary_email)


def test_a_real_consumer_posts_every_email_of_a_burst_once(worker_settings: Settings, world: World, engine: Engine) -> None:
    consumer = huey.create_consumer(workers=2, worker_type="thread", periodic=False, initial_delay=0.05, max_delay=0.2)
    consumer.start()
    try:
        with running_smtp_server(worker_settings) as (host, port):
            answers: list[int] = []

            def deliver(n: int) -> None:
                raw = reply_email(world.primary_email, world.reply_to, f"Note {n}", message_id=f"<burst-{n}@parents.test>")
                answers.append(send(host, port, world.primary_email, world.reply_to, raw)[0])

            senders = [threading.Thread(target=deliver, args=(n,)) for n in range(6)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()
            assert answers == [250] * 6
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and any(r.outcome == "received" for r in queries.inbound(engine)):
            time.sleep(0.05)
    finally:
        consumer.stop(graceful=True)

    assert sorted(r.outcome for r in queries.inbound(engine)) == ["posted"] * 6
    assert sorted(m.body for m in queries.messages(engine, world.thread_id)) == [f"Note {n}" for n in range(6)]


def test_a_stored_email_whose_push_was_lost_is_processed_by_the_repair_step_exactly_once(
    worker_settings: Settings, world: World, engine: Engine
) -> None:
    with running_smtp_server(worker_settings) as (host, port):
        assert send(host, port, world.primary_email, world.reply_to, reply_email(world.primary_email, world.reply_to))[0] == 250
    huey.flush()  # the push is lost (a queue restart without persistence, say)
    [row] = queries.inbound(engine)
    now = utcnow()

    with Session(engine) as session:
        assert requeue_stuck(session, now) == []  # a fresh email is the worker's, not the repair's
        assert requeue_stuck(session, now + timedelta(seconds=31)) == [row.id]
    assert run_queued_tasks() >= 1  # the email, then outbound's notification task
    with Session(engine) as session:
        assert requeue_stuck(session, now + timedelta(minutes=5)) == []

    [message] = queries.messages(engine, world.thread_id)
    assert message.contact_id == world.primary_id
    assert [(r.outcome, r.posted_message_id) for r in queries.inbound(engine)] == [("posted", message.id)]


def test_a_received_row_processed_twice_posts_once(worker_settings: Settings, world: World, engine: Engine) -> None:
    with running_smtp_server(worker_settings) as (host, port):
        assert send(host, port, world.primary_email, world.reply_to, reply_email(world.primary_email, world.reply_to))[0] == 250
    [row] = queries.inbound(engine)
    server_engine = make_engine(worker_settings.database_url)
    sessions = make_session_factory(server_engine)
    start = threading.Barrier(2)
    outcomes: list[str | None] = []

    def work() -> None:
        start.wait()
        outcome = process_stored_email(sessions, worker_settings, row.id)
        outcomes.append(outcome.outcome if outcome else None)

    workers = [threading.Thread(target=work) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    process_inbound_email.call_local(row.id)  # and once more, as a late duplicate task would
    server_engine.dispose()

    assert sorted(outcomes, key=str) == [None, "posted"]  # one run posted, the other found it done
    assert len(queries.messages(engine, world.thread_id)) == 1
    assert [r.outcome for r in queries.inbound(engine)] == ["posted"]


def test_the_repair_step_never_requeues_an_email_a_live_worker_holds(
    worker_settings: Settings, world: World, engine: Engine
) -> None:
    """A worker's lease keeps the repair step (and a duplicate task) off its email until it expires."""
    with running_smtp_server(worker_settings) as (host, port):
        assert send(host, port, world.primary_email, world.reply_to, reply_email(world.primary_email, world.reply_to))[0] == 250
    huey.flush()
    [row] = queries.inbound(engine)
    now = utcnow()
    sessions = make_session_factory(engine)
    assert claim_email(sessions, row.id, now) is not None  # a live worker starts on it

    with Session(engine) as session:
        assert requeue_stuck(session, now + timedelta(seconds=31)) == []  # long past STUCK_AFTER, still held
    # A second task for the same email (a duplicate push) leaves it to the holder.
    assert process_stored_email(sessions, worker_settings, row.id, now + timedelta(seconds=31)) is None
    assert [r.outcome for r in queries.inbound(engine)] == ["received"]
    assert queries.messages(engine, world.thread_id) == []

    expired = now + LEASE + timedelta(seconds=1)  # the worker died: its lease runs out
    with Session(engine) as session:
        assert requeue_stuck(session, expired) == [row.id]
    huey.flush()
    outcome = process_stored_email(sessions, worker_settings, row.id, expired)
    assert outcome is not None and outcome.outcome == "posted"
    assert len(queries.messages(engine, world.thread_id)) == 1


def test_a_batch_push_is_processed_in_chunks_each_email_on_its_own(
    worker_settings: Settings, world: World, engine: Engine
) -> None:
    """One push of six emails becomes two tasks (four and two emails) rather than six; each
    email is still posted once, and one with no sender is held alone."""
    with running_smtp_server(worker_settings) as (host, port):
        for n in range(5):
            raw = reply_email(world.primary_email, world.reply_to, f"Chunk {n}", message_id=f"<chunk-{n}@parents.test>")
            assert send(host, port, world.primary_email, world.reply_to, raw)[0] == 250
        assert send(host, port, world.primary_email, world.reply_to, b"\x00\xff no headers at all")[0] == 250
    huey.flush()  # the server's own pushes: this test pushes the batch itself
    ids = [r.id for r in queries.inbound(engine)]

    process_inbound_batch.call_local(ids)
    assert huey.pending_count() == 2  # chunks of BATCH_CHUNK, not a task per email
    assert {r.outcome for r in queries.inbound(engine)} == {"received"}
    run_queued_tasks()

    outcomes = [r.outcome for r in queries.inbound(engine)]
    assert outcomes == ["posted"] * 5 + ["quarantined"]  # no sender: held, alone
    assert [m.body for m in queries.messages(engine, world.thread_id)] == [f"Chunk {n}" for n in range(5)]


def _store(settings: Settings, world: World, engine: Engine, raws: list[bytes]) -> list[int]:
    """The emails as `received` rows, their pushes dropped: the test hands them out itself."""
    with running_smtp_server(settings) as (host, port):
        for raw in raws:
            assert send(host, port, world.primary_email, world.reply_to, raw)[0] == 250
    huey.flush()
    return [r.id for r in queries.inbound(engine)]


def _outcomes(outcomes: list[Outcome | None]) -> list[str | None]:
    return [o.outcome if o is not None else None for o in outcomes]


def test_a_chunk_leaves_an_email_another_worker_holds_to_it_and_reads_a_big_email_on_its_turn(
    worker_settings: Settings, world: World, engine: Engine
) -> None:
    """The chunk's leases are one statement: an email a live worker holds is left out, the
    rest are processed in order; an email too big to come back with its lease is read alone."""
    big = EmailMessage()
    big["From"] = world.primary_email
    big["To"] = world.reply_to
    big["Subject"] = "Photos"
    big["Message-ID"] = "<big-1@parents.test>"
    big.set_content("The whole album!")
    big.add_attachment(b"\x89PNG" + bytes(INLINE_RAW_BYTES), maintype="image", subtype="png", filename="album.png")
    raws = [reply_email(world.primary_email, world.reply_to, f"Chunk {n}", message_id=f"<held-{n}@parents.test>") for n in range(3)]
    ids = _store(worker_settings, world, engine, [raws[0], raws[1], big.as_bytes(policy=SMTP), raws[2]])
    sessions = make_session_factory(engine)
    now = utcnow()
    assert claim_email(sessions, ids[1], now) is not None  # another worker is on it

    held_at_first_commit: list[set[int]] = []

    def note_the_leases(_session: Session) -> None:
        if not held_at_first_commit:
            held_at_first_commit.append({r.id for r in queries.inbound(engine) if r.claimed_until is not None})

    event.listen(sessions, "after_commit", note_the_leases)
    faults: list[int] = []
    outcomes = process_stored_emails(sessions, worker_settings, ids, now, on_transient=lambda i, _e: faults.append(i))

    assert held_at_first_commit == [set(ids)]  # every lease taken before the first email's work
    assert _outcomes(outcomes) == ["posted", None, "posted", "posted"] and faults == []
    assert [r.outcome for r in queries.inbound(engine)] == ["posted", "received", "posted", "posted"]
    messages = queries.messages(engine, world.thread_id)
    assert [m.body for m in messages] == ["Chunk 0", "The whole album!", "Chunk 2"]
    assert [a.size for a in messages[1].attachments] == [INLINE_RAW_BYTES + 4]


def test_a_transient_fault_in_one_email_of_a_chunk_leaves_it_received_and_free_and_the_others_posted(
    worker_settings: Settings, world: World, engine: Engine, outage: Outage
) -> None:
    """The database goes away between the chunk's first and second email and is back at
    once: the second email gives its lease back for its own retry; the chunk's connection
    is replaced and the third and fourth are posted."""
    raws = [reply_email(world.primary_email, world.reply_to, f"Chunk {n}", message_id=f"<cut-{n}@parents.test>") for n in range(4)]
    ids = _store(worker_settings, world, engine, raws)
    commits: list[int] = []
    errors: list[BaseException] = []

    def cut_after_the_first_email(_session: Session) -> None:
        commits.append(1)
        if len(commits) == 1 + (worker_settings.database_url.startswith("sqlite")):  # SQLite: the leases' own commit first
            outage.begin()

    def back_at_once(context: object) -> None:
        errors.append(getattr(context, "original_exception", None))  # type: ignore[arg-type]
        outage.end()

    event.listen(outage.session_factory, "after_commit", cut_after_the_first_email)
    outage_engine = outage.session_factory.kw["bind"]
    event.listen(outage_engine, "handle_error", back_at_once)
    faults: list[int] = []
    outcomes = process_stored_emails(outage.session_factory, worker_settings, ids, on_transient=lambda i, _e: faults.append(i))

    assert errors and faults == [ids[1]]
    assert _outcomes(outcomes) == ["posted", None, "posted", "posted"]
    rows = queries.inbound(engine)
    assert [r.outcome for r in rows] == ["posted", "received", "posted", "posted"]
    assert rows[1].claimed_until is None  # its own retry may start at once
    assert [m.body for m in queries.messages(engine, world.thread_id)] == ["Chunk 0", "Chunk 2", "Chunk 3"]
    assert process_stored_email(make_session_factory(engine), worker_settings, ids[1]).outcome == "posted"  # type: ignore[union-attr]


def test_a_chunks_checks_and_hints_leave_together_once_its_last_email_is_committed(
    worker_settings: Settings, world: World, engine: Engine
) -> None:
    """Each post's digest and escalation checks (due minutes later) and its live hint are
    handed on after the chunk's last commit, in one round trip each on Redis."""
    raws = [reply_email(world.primary_email, world.reply_to, f"Chunk {n}", message_id=f"<later-{n}@parents.test>") for n in range(3)]
    ids = _store(worker_settings, world, engine, raws)
    hints: list[dict[str, object]] = []
    unsubscribe = local_broker.subscribe(hints.append)
    sessions = make_session_factory(engine)
    at_commits: list[tuple[int, int]] = []
    event.listen(sessions, "after_commit", lambda _session: at_commits.append((huey.scheduled_count(), len(hints))))
    try:
        outcomes = process_stored_emails(sessions, worker_settings, ids, on_transient=lambda _i, _e: None)
    finally:
        unsubscribe()

    assert _outcomes(outcomes) == ["posted"] * 3
    assert at_commits and set(at_commits) == {(0, 0)}
    assert huey.scheduled_count() == 6  # each post's escalation and digest checks
    if worker_settings.live_is_local:  # a Redis live URL publishes there instead
        posted = [m.id for m in queries.messages(engine, world.thread_id)]
        assert [h["message_id"] for h in hints] == posted
