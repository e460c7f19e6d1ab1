"""Outbound throughput and delay precision, against a bare aiosmtpd sink measured in the same run.

1. Baseline: the sink's own rate, one reused smtplib connection sending pre-rendered digests.
2. 10,000 contacts (5,000 two-parent families) each owed a digest: the time for the sweep to
   find and enqueue them, and for a real `pawpost worker` process to hand them to the sink.
3. Precision: messages posted through `outbound.notify.message_posted` with a 2-second delay;
   actual arrival at the sink minus (message time + delay), p50/p99/max.

    .venv/bin/python -m bench.notify [--contacts 10000] [--database-url URL] [--queue-url URL]

Defaults to the embedded stack (SQLite + the SQLite queue) in a temporary directory; pass
e.g. `--database-url postgresql://postgres@127.0.0.1:5432/bench_notify --queue-url
redis://127.0.0.1:6379/11` for the production stack (the database is emptied first).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

from bench.database import prepare_database
from outbound import notify, tasks
from outbound.ids import outbox_id_from_message_id
from outbound.queue import configure_queue, huey
from pawpost.settings import Settings
from tests.outbound.smtp_sink import BoundController, bound_socket
from threads import migrate
from threads.addresses import new_reply_token
from threads.db import make_engine, make_session_factory
from threads.models import (
    Business,
    Contact,
    ContactAddress,
    Family,
    Message,
    OutboundEmail,
    Pet,
    Staff,
    Thread,
    outbound_email_messages,
)
from threads.posting import post_message
from threads.types import utcnow

DOMAIN = "mail.pawbench.example"
RESULTS = Path(__file__).with_name("results") / "notify.json"


class CountingSink:
    """The bare relay: accepts everything, keeps arrival times (and raw mail when asked)."""

    def __init__(self) -> None:
        self.count = 0
        self.keep = False
        self.kept: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
            if self.keep:
                self.kept.append((time.time(), envelope.original_content or envelope.content))
        return "250 OK"

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count >= count:
                return True
            time.sleep(0.01)
        return False


def seed(database_url: str, families: int, message_at: datetime) -> list[int]:
    """One business, `families` families of two contacts, one staff message each; thread ids."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        business = Business(slug="bench", name="Happy Tails", timezone="America/New_York", sender_name="Happy Tails")
        session.add(business)
        session.flush()
        staff = Staff(business_id=business.id, name="Priya Patel", email="priya@pawbench.example", role="senior")
        session.add(staff)
        session.flush()
        business_id, staff_id = business.id, staff.id
    rows = range(1, families + 1)
    with engine.begin() as connection:
        connection.execute(insert(Family), [{"id": n, "business_id": business_id, "external_id": f"f{n}", "name": f"Family {n}"} for n in rows])
        connection.execute(insert(Pet), [{"family_id": n, "name": f"Rex {n}", "species": "dog"} for n in rows])
        contacts = [
            {"id": 2 * n - 1 + k, "family_id": n, "name": f"Parent{k} Family{n}", "is_primary": k == 0}
            for n in rows
            for k in (0, 1)
        ]
        connection.execute(insert(Contact), contacts)
        connection.execute(
            insert(ContactAddress),
            [{"contact_id": c["id"], "email": f"p{c['id']}@parents.example", "verified": True, "bouncing": False} for c in contacts],
        )
        connection.execute(
            insert(Thread),
            [
                {
                    "id": n,
                    "business_id": business_id,
                    "family_id": n,
                    "reply_token": new_reply_token(),
                    "root_message_id": f"thread.{n}.{new_reply_token()}@{DOMAIN}",
                    "active": True,
                    "last_message_id": n,
                    "last_message_at": message_at,
                    "message_count": 1,
                    "created_at": message_at - timedelta(days=30),
                }
                for n in rows
            ],
        )
        connection.execute(
            insert(Message),
            [
                {
                    "id": n,
                    "thread_id": n,
                    "author_type": "staff",
                    "staff_id": staff_id,
                    "body": f"Rex {n} had a lovely walk today.\nHe drank plenty of water and napped.",
                    "source": "portal",
                    "created_at": message_at,
                }
                for n in rows
            ],
        )
        if engine.dialect.name == "postgresql":
            for table in ("families", "contacts", "threads", "messages"):
                connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    engine.dispose()
    return list(rows)


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU a process and its live children (worker processes) have used so far."""
    total, children = 0.0, {pid}
    for stat in sorted(Path("/proc").glob("[0-9]*/stat"), key=lambda path: int(path.parent.name)):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        own_pid, parent = int(stat.parent.name), int(fields[1])
        if own_pid == pid or parent in children:
            children.add(own_pid)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def baseline_rate(port: int, sample: bytes, count: int, sink: CountingSink) -> float:
    """The sink's own rate: one reused connection, nothing else to do but send."""
    start_count = sink.count
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for n in range(count):
            client.sendmail("bounce+1@" + DOMAIN, [f"p{n}@parents.example"], sample)
    sink.wait_for(start_count + count, 60)
    return count / (time.perf_counter() - started)


def baseline(settings: Settings, thread_id: int, port: int, count: int, sink: CountingSink) -> tuple[float, bytes]:
    """Render one digest exactly like the worker does (then roll it back) and time the sink."""
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        with session.begin():
            decision = notify.plan_digests(session, settings, thread_id, utcnow())
            raw = session.execute(select(OutboundEmail.raw).where(OutboundEmail.id == decision.outbox_ids[0])).scalar_one()
            session.rollback()
    engine.dispose()
    return baseline_rate(port, raw, count, sink), raw


def start_worker(settings: Settings, log: Path, workers: int, processes: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAWPOST_")}
    env.update(settings.environment())
    command = "from pawpost.cli import main; main()"
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-c", command, "worker", "--workers", str(workers), "--processes", str(processes), "--sweep-seconds", "3600"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def precision(settings: Settings, sink: CountingSink, thread_ids: list[int], posts: int) -> dict[str, float]:
    """Post `posts` staff messages (one every 40 ms) and measure arrival minus intended time."""
    sessions = make_session_factory(make_engine(settings.database_url))
    sink.keep, sink.kept = True, []
    expected = sink.count + 2 * posts
    for n in range(posts):
        with sessions() as session, session.begin():
            thread = session.get(Thread, thread_ids[n])
            staff = session.scalar(select(Staff))
            message_id = post_message(session, thread, staff, f"Update {n}: all good").id
        notify.message_posted(message_id)
        time.sleep(0.04)
    sink.wait_for(expected, 120)
    delay = timedelta(seconds=settings.notify_delay_seconds)
    lateness = []
    with sessions() as session:
        for arrived, raw in sink.kept:
            message_header = message_from_bytes(raw, policy=policy.default)["Message-ID"]
            outbox_id = outbox_id_from_message_id(message_header, settings.mail_domain)
            created = session.scalar(
                select(Message.created_at)
                .join(outbound_email_messages, outbound_email_messages.c.message_id == Message.id)
                .where(outbound_email_messages.c.outbound_email_id == outbox_id)
                .order_by(Message.id)
                .limit(1)
            )
            lateness.append(arrived - (created + delay).timestamp())
    lateness.sort()
    return {
        "emails": len(lateness),
        "p50_s": round(statistics.median(lateness), 3),
        "p99_s": round(lateness[min(len(lateness) - 1, int(len(lateness) * 0.99))], 3),
        "max_s": round(lateness[-1], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--database-url")
    parser.add_argument("--queue-url")
    parser.add_argument("--workers", type=int, default=2, help="worker threads of the one worker process")
    parser.add_argument("--processes", type=int, default=0, help="worker processes instead of threads")
    parser.add_argument("--precision-posts", type=int, default=200)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="pawpost-bench-notify-"))
    database_url = args.database_url or f"sqlite:///{data_dir / 'pawpost.sqlite3'}"
    queue_url = args.queue_url or f"sqlite:///{data_dir / 'queue.sqlite3'}"
    if database_url.startswith("postgres"):
        prepare_database(database_url)
    else:
        migrate.upgrade(database_url)
    families = args.contacts // 2

    sink = CountingSink()
    sock = bound_socket()
    controller = BoundController(sink, sock)
    controller.start()
    port = sock.getsockname()[1]
    settings = Settings.from_env(
        {
            "PAWPOST_DATA_DIR": str(data_dir),
            "PAWPOST_DATABASE_URL": database_url,
            "PAWPOST_QUEUE_URL": queue_url,
            "PAWPOST_OUTBOUND_URL": f"smtp://127.0.0.1:{port}",
            "PAWPOST_REPLY_DOMAIN": DOMAIN,
            "PAWPOST_NOTIFY_DELAY_SECONDS": "2",
            "PAWPOST_SECRET_KEY": "bench-notify-secret-key-0123456789",
        }
    )
    configure_queue(settings)
    if queue_url.startswith("redis"):
        huey.storage.flush_all()

    load_before = Path("/proc/loadavg").read_text().split()[:3]
    worker = start_worker(settings, data_dir / "worker.log", args.workers, args.processes)
    time.sleep(3)  # imports and the worker's start-up sweep (on an empty database), untimed
    thread_ids = seed(database_url, families, utcnow() - timedelta(minutes=10))
    sink_rate, raw = baseline(settings, thread_ids[-1], port, args.contacts, sink)
    print(f"baseline {sink_rate:.0f}/s, sink at {sink.count}", file=sys.stderr)
    before = sink.count
    worker_cpu, bench_cpu = process_tree_cpu_seconds(worker.pid), time.process_time()
    started = time.perf_counter()
    due = tasks.run_sweep()
    enqueue_seconds = time.perf_counter() - started
    delivered = sink.wait_for(before + args.contacts, 900)
    print(f"sweep found {len(due.digest_thread_ids)} threads; sink got {sink.count - before}", file=sys.stderr)
    deliver_seconds = time.perf_counter() - started
    worker_rate = (sink.count - before) / deliver_seconds
    # Cores each side kept busy: the worker process, and this process (the sink's event
    # loop; the main thread only ran the sweep's query and then waited).
    worker_cores = (process_tree_cpu_seconds(worker.pid) - worker_cpu) / deliver_seconds
    sink_cores = (time.process_time() - bench_cpu) / deliver_seconds

    result = {
        "stack": "sqlite + sqlite queue" if database_url.startswith("sqlite") else "postgresql + " + queue_url.split(":", 1)[0],
        "contacts": args.contacts,
        "digest_threads_found": len(due.digest_thread_ids),
        "sweep_enqueue_s": round(enqueue_seconds, 3),
        "delivered": sink.count - before,
        "all_delivered": delivered,
        "sweep_to_sink_s": round(deliver_seconds, 2),
        "worker_rate_per_s": round(worker_rate, 1),
        "sink_rate_one_connection_per_s": round(sink_rate, 1),
        "ratio": round(worker_rate / sink_rate, 3),
        "worker_threads": 0 if args.processes else args.workers,
        "worker_processes": args.processes or 1,
        "worker_cpu_cores": round(worker_cores, 2),
        "sink_process_cpu_cores": round(sink_cores, 2),
        "loadavg_at_start": " ".join(load_before),
        "email_bytes": len(raw),
    }
    result["precision_2s_delay"] = precision(settings, sink, thread_ids, args.precision_posts)
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    controller.stop()
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
