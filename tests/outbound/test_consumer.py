"""A real `pawpost worker` process on SQLite and on Redis, a real relay, real time (1 s delay)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy import text

from outbound import notify
from outbound.ids import outbox_id_from_message_id, verp_sender
from outbound.queue import configure_queue
from pawpost.settings import Settings
from tests.conftest import PG_URL, REDIS_URL, require
from tests.outbound.conftest import make_settings
from tests.outbound.smtp_sink import bound_socket, running_sink
from tests.outbound.world import build_world, carried, outbox_rows, post
from threads.models import Base, OutboundEmail, Thread
from threads.types import utcnow

QUIET = 2.5  # long enough for two more sweeps (one a second) to find anything left over


def _redis_reason(url: str) -> str | None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        return f"Redis unreachable at {url}: {error}"
    return None


@contextmanager
def worker(settings: Settings, log: Path, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAWPOST_")}
    env.update(settings.environment())
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", "from pawpost.cli import main; main()", "worker", "--workers", "2", "--sweep-seconds", "1", *options],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: b"Huey consumer started" in log.read_bytes() or process.poll() is not None, timeout=60)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def wait_until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def stop_gracefully(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(30)


def committed_post(sessions, world, author, body: str) -> int:  # type: ignore[no-untyped-def]
    """What the portal does: commit the message, then tell outbound."""
    message_id = post(sessions, world, author, body, utcnow())
    notify.message_posted(message_id)
    return message_id


@pytest.fixture(params=["sqlite", "redis"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(database URL, queue URL): SQLite + the SQLite queue (the embedded default), or
    PostgreSQL + Redis (production)."""
    if request.param == "sqlite":
        path = tmp_path / "pawpost.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}", f"sqlite:///{tmp_path / 'queue.sqlite3'}"
        return
    reason = _redis_reason(REDIS_URL)
    require(reason is None, reason or "")
    engine = request.getfixturevalue("postgres_engine")
    names = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    redis.Redis.from_url(REDIS_URL).flushdb()
    yield PG_URL, REDIS_URL
    redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture
def database_url(stack: tuple[str, str]) -> str:
    return stack[0]


@pytest.fixture
def queue_url(stack: tuple[str, str]) -> str:
    return stack[1]


def test_a_real_consumer_sends_the_digest_once_with_its_headers(queue_url: str, database_url: str, tmp_path: Path, sessions) -> None:
    with running_sink() as (handler, port):
        settings = make_settings(
            database_url,
            tmp_path,
            PAWPOST_QUEUE_URL=queue_url,
            PAWPOST_OUTBOUND_URL=f"smtp://127.0.0.1:{port}",
            PAWPOST_NOTIFY_DELAY_SECONDS="1",
        )
        configure_queue(settings)
        world = build_world(sessions, now=utcnow())
        with worker(settings, tmp_path / "worker.log") as process:
            posted_at = time.time()
            message_id = committed_post(sessions, world, ("staff", world.walker_id), "Bella loved the park")
            received = handler.wait_for(2)
            time.sleep(QUIET)
            assert stop_gracefully(process) == 0, (tmp_path / "worker.log").read_text()
        received = list(handler.received)

    assert sorted(r for item in received for r in item.rcpt_tos) == sorted([world.primary_email, world.secondary_email])
    assert all(item.at - posted_at >= 1 for item in received)
    with sessions() as session:
        thread = session.get(Thread, world.thread_id)
        rows = {item.rcpt_tos[0]: session.get(OutboundEmail, outbox_id_from_message_id(item.message["Message-ID"], "reply.test")) for item in received}
    for item in received:
        email, row = item.message, rows[item.rcpt_tos[0]]
        assert row is not None and row.state == "sent" and row.recipient_email == item.rcpt_tos[0]
        assert item.mail_from == verp_sender(row.id, "reply.test", settings.secret_key)
        assert carried(sessions, row.id) == [message_id]
        sender = email["From"].addresses[0]
        assert (sender.display_name, sender.addr_spec) == ("Priya Patel at Happy Tails", "notifications@reply.test")
        assert email["Reply-To"] == f"reply+{thread.reply_token}@reply.test"
        assert email["In-Reply-To"] == email["References"] == f"<{thread.root_message_id}>"
        assert email["Subject"] == email["Thread-Topic"] == "Happy Tails: Johnson family (Bella and Max)"
        assert email["Thread-Index"] and email["Auto-Submitted"] == "auto-generated"
        assert email["X-Auto-Response-Suppress"] == "All"
        assert "Bella loved the park" in email.get_body(("plain",)).get_content()


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_a_worker_killed_between_commit_and_send_is_repaired_once(queue_url: str, database_url: str, tmp_path: Path, sessions) -> None:
    """A worker committed the digests (cursor + outbox rows) and died before sending."""
    with running_sink() as (handler, port):
        settings = make_settings(
            database_url, tmp_path, PAWPOST_QUEUE_URL=queue_url, PAWPOST_OUTBOUND_URL=f"smtp://127.0.0.1:{port}",
            PAWPOST_NOTIFY_DELAY_SECONDS="1",
        )
        configure_queue(settings)
        world = build_world(sessions, now=utcnow())
        message_id = post(sessions, world, ("staff", world.walker_id), "Walk done", utcnow() - timedelta(seconds=2))
        with sessions() as session, session.begin():
            decision = notify.plan_digests(session, settings, world.thread_id, utcnow())
        assert len(decision.outbox_ids) == 2  # committed, never sent: the worker "died" here
        with worker(settings, tmp_path / "worker.log") as process:
            handler.wait_for(2)
            time.sleep(QUIET)
            assert stop_gracefully(process) == 0
        received = list(handler.received)

    assert sorted(r for item in received for r in item.rcpt_tos) == sorted([world.primary_email, world.secondary_email])
    assert {row.state for row in outbox_rows(sessions)} == {"sent"}
    assert [carried(sessions, row.id) for row in outbox_rows(sessions)] == [[message_id], [message_id]]


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_redis_restarted_loses_nothing(queue_url: str, database_url: str, tmp_path: Path, sessions) -> None:
    """A private Redis (no persistence) dies with a scheduled digest in it, and is down while
    a message is posted; after it comes back the sweep delivers both messages, once."""
    binary = shutil.which("redis-server")
    require(binary is not None, "redis-server is not installed")
    sock = bound_socket()
    redis_port = sock.getsockname()[1]
    sock.close()

    def start_redis() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=redis_port)
        for _ in range(100):
            try:
                client.ping()
                return process
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    redis_process = start_redis()
    try:
        with running_sink() as (handler, port):
            settings = make_settings(
                database_url,
                tmp_path,
                PAWPOST_QUEUE_URL=f"redis://127.0.0.1:{redis_port}/0",
                PAWPOST_OUTBOUND_URL=f"smtp://127.0.0.1:{port}",
                PAWPOST_NOTIFY_DELAY_SECONDS="5",
            )
            configure_queue(settings)
            world = build_world(sessions, now=utcnow())
            with worker(settings, tmp_path / "worker.log") as process:
                first = committed_post(sessions, world, ("staff", world.walker_id), "Walk done")
                wait_until(lambda: redis.Redis(port=redis_port).zcard("huey.schedule.pawpost") >= 1)
                redis_process.kill()
                redis_process.wait(10)
                second = committed_post(sessions, world, ("staff", world.senior_id), "Photos are up")  # push fails
                redis_process = start_redis()
                handler.wait_for(2)
                time.sleep(QUIET + 1)
                assert stop_gracefully(process) == 0
            received = list(handler.received)
    finally:
        redis_process.kill()
        redis_process.wait(10)

    assert sorted(r for item in received for r in item.rcpt_tos) == sorted([world.primary_email, world.secondary_email])
    for address in (world.primary_email, world.secondary_email):
        emailed = [m for row in outbox_rows(sessions) if row.recipient_email == address for m in carried(sessions, row.id)]
        assert emailed == [first, second]  # each message reached each parent exactly once


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_worker_processes_split_a_backlog_and_send_each_digest_once(queue_url: str, database_url: str, tmp_path: Path, sessions) -> None:
    """`pawpost worker --processes 2`: forked workers share the sweep's batches; every
    parent of every family gets exactly one digest, and SIGTERM still stops cleanly."""
    from tests.outbound.test_batches import build_families

    with running_sink() as (handler, port):
        settings = make_settings(
            database_url, tmp_path, PAWPOST_QUEUE_URL=queue_url, PAWPOST_OUTBOUND_URL=f"smtp://127.0.0.1:{port}",
            PAWPOST_NOTIFY_DELAY_SECONDS="1",
        )
        configure_queue(settings)
        families = build_families(sessions, 60, at=utcnow() - timedelta(minutes=5))  # due: the sweep finds them
        with worker(settings, tmp_path / "worker.log", "--processes", "2") as process:
            handler.wait_for(120, timeout=60)
            time.sleep(QUIET)
            assert stop_gracefully(process) == 0, (tmp_path / "worker.log").read_text()
        received = list(handler.received)

    everyone = sorted(a for addresses in families.addresses.values() for a in addresses)
    assert sorted(r for item in received for r in item.rcpt_tos) == everyone
    assert {row.state for row in outbox_rows(sessions)} == {"sent"}


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_an_announcement_survives_a_killed_worker_without_skipping_or_doubling(
    queue_url: str, database_url: str, tmp_path: Path, sessions
) -> None:
    """SIGKILL the worker half-way through an announcement; the next worker's sweep finishes it."""
    from sqlalchemy import func, select

    from outbound.tasks import post_announcement
    from tests.factories import make_family
    from threads.announcements import create_announcement, pick_audience, progress
    from threads.models import Message, Staff

    settings = make_settings(database_url, tmp_path, PAWPOST_QUEUE_URL=queue_url, PAWPOST_OUTBOUND_URL="smtp://127.0.0.1:9")
    configure_queue(settings)
    world = build_world(sessions, now=utcnow())
    with sessions() as session, session.begin():
        senior = session.get(Staff, world.senior_id)
        for n in range(600):
            make_family(session, senior.business, name=f"Family {n:04d}", contacts=(f"Pat P{n}",), pets=("Rex",))
        session.flush()
        announcement = create_announcement(session, senior, "Closed for the storm", pick_audience(session, senior, "everyone"), utcnow())
        aid, total = announcement.id, 601
    log = tmp_path / "worker.log"
    with worker(settings, log) as process:
        post_announcement(aid)
        def posted() -> int:
            with sessions() as session:
                return progress(session, aid)[0]
        wait_until(lambda: posted() > 0, timeout=60)
        process.kill()
        process.wait(10)
    at_kill = posted()
    assert 0 < at_kill < total, at_kill
    with worker(settings, log) as process:  # its sweep restarts the announcement
        wait_until(lambda: posted() == total, timeout=120)
        assert stop_gracefully(process) == 0
    with sessions() as session:
        per_thread = session.execute(
            select(Message.thread_id, func.count()).where(Message.body == "Closed for the storm").group_by(Message.thread_id)
        ).all()
    assert len(per_thread) == total and {count for _thread, count in per_thread} == {1}
