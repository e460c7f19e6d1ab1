"""Inbound throughput: `pawpost smtp` on PostgreSQL against a bare aiosmtpd, in one run.

2,000 one-kilobyte replies from the families' parents, over 20 concurrent SMTP sessions
(each session sends its share back to back, as a relaying MTA does), first into a bare
aiosmtpd that answers 250 to everything, then into `pawpost smtp`, which stores the raw
email (group commit) and answers 250 after the commit; parsing, routing and posting
happen in the queue worker. Both servers run as separate processes and are driven by the
same client, so the ratio says what Pawpost's accept path costs a sender. Each server
first takes one untimed email per session (connections, caches, prepared statements).
Accept latency is per email: from MAIL FROM to the 250 after the final dot.

Then real `pawpost worker` processes drain the stored emails (parse, classify, strip
quotes, route, post, and plan the staff alerts), timed until the last row has left
`received` and the last posted message has its alerts planned (`alerted_at`): the
end-to-end processing rate, also printed as a ratio of the accept rate of the same run.
Nothing else runs meanwhile, so neither phase steals the other's CPU.

    .venv/bin/python -m bench.inbound [--database-url postgresql://postgres@127.0.0.1:5432/bench_inbound]
        [--queue-url redis://127.0.0.1:6379/13] [--emails 2000] [--sessions 20]
        [--worker-processes 2] [--worker-threads 2]

The database is emptied and migrated first, the queue's Redis db flushed (that db only).
The target accept ratio is >= 0.6.
"""

from __future__ import annotations

import argparse
import os
import re
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from bench.database import prepare_database
from threads.addresses import reply_address
from threads.db import make_engine
from threads.directory import ensure_thread, refresh_search_terms
from threads.models import Business, Contact, ContactAddress, Family, InboundEmail, Message

REPLY_DOMAIN = "reply.bench.test"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bench_inbound"
DEFAULT_QUEUE_URL = "redis://127.0.0.1:6379/13"
DRAIN_TIMEOUT_SECONDS = 600
FAMILIES = 200
BARE_SERVER = """
import asyncio, signal, sys
from aiosmtpd.smtp import SMTP

class Accept:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 OK"

async def main():
    loop = asyncio.get_running_loop()
    factory = lambda: SMTP(Accept(), hostname="bare.bench.test", enable_SMTPUTF8=True, data_size_limit=25 * 1024 * 1024)
    server = await loop.create_server(factory, "127.0.0.1", 0)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()

asyncio.run(main())
"""


@dataclass(frozen=True)
class Delivery:
    sender: str
    recipient: str
    raw: bytes


@dataclass(frozen=True)
class Result:
    name: str
    emails: int
    seconds: float
    latencies: list[float]
    failures: int

    @property
    def rate(self) -> float:
        return self.emails / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def seed(url: str) -> list[tuple[str, str, str]]:
    """One business with families of two parents; returns (parent name, address, reply address)."""
    engine = make_engine(url)
    people = []
    with Session(engine) as session, session.begin():
        business = Business(slug="bench", name="Bench Tails", timezone="America/New_York", sender_name="Bench Tails")
        session.add(business)
        session.flush()
        for n in range(FAMILIES):
            family = Family(business_id=business.id, external_id=f"f{n}", name=f"Family {n}")
            for index, first in enumerate(("Emma", "Liam")):
                family.contacts.append(
                    Contact(
                        name=f"{first} Family{n}",
                        is_primary=index == 0,
                        addresses=[ContactAddress(email=f"{first.lower()}.{n}@parents.test", verified=True, bouncing=False)],
                    )
                )
            session.add(family)
            session.flush()
            refresh_search_terms(session, family)
            thread = ensure_thread(session, family, REPLY_DOMAIN)
            for contact in family.contacts:
                people.append((contact.name, contact.addresses[0].email, reply_address(thread, REPLY_DOMAIN)))
    engine.dispose()
    return people


def build_emails(people: list[tuple[str, str, str]], count: int) -> list[Delivery]:
    """Realistic ~1 KB replies: a few lines of news above the quoted notification."""
    deliveries = []
    for n in range(count):
        name, address, reply_to = people[n % len(people)]
        message = EmailMessage()
        message["From"] = f"{name} <{address}>"
        message["To"] = reply_to
        message["Subject"] = "Re: New messages about Bella"
        message["Message-ID"] = f"<bench-{n}-{time.time_ns()}@parents.test>"
        message.set_content(
            f"Thanks so much! Bella was tired but happy when we got home (reply {n}).\n"
            "Could you also bring her blue harness tomorrow? It is hanging by the door.\n\n"
            "On Mon, 3 Jun 2024 at 09:12, Bench Tails <notifications@reply.bench.test> wrote:\n"
            + "".join(f"> Morgan wrote: Bella did great on today's walk, line {i} of the digest.\n" for i in range(9))
        )
        deliveries.append(Delivery(address, reply_to, message.as_bytes(policy=SMTP)))
    return deliveries


def drive(name: str, port: int, deliveries: list[Delivery], sessions: int) -> Result:
    """Send every delivery over `sessions` concurrent connections; time each acceptance."""
    shares = [deliveries[i::sessions] for i in range(sessions)]
    latencies: list[list[float]] = [[] for _ in range(sessions)]
    failures = [0] * sessions
    start = threading.Barrier(sessions + 1)

    def session_worker(index: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
            client.ehlo("bench.client")
            start.wait()
            for delivery in shares[index]:
                began = time.perf_counter()
                client.mail(delivery.sender)
                client.rcpt(delivery.recipient)
                code, _ = client.data(delivery.raw)
                latencies[index].append(time.perf_counter() - began)
                if code != 250:
                    failures[index] += 1
                    client.rset()

    workers = [threading.Thread(target=session_worker, args=(i,)) for i in range(sessions)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - began
    return Result(name, len(deliveries), seconds, [x for part in latencies for x in part], sum(failures))


def start_process(command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        match = re.search(r"listening on [\d.]+:(\d+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()  # type: ignore[union-attr]
            return process, int(match.group(1))
    raise SystemExit(f"{command[0]} exited with {process.wait()} before listening")


def cpu_seconds(process: subprocess.Popen[str]) -> float:
    """User + system CPU the server process used so far (Linux /proc)."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_process(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=60)


def report(result: Result) -> str:
    return (
        f"{result.name:<14} {result.emails} emails in {result.seconds:6.2f} s = {result.rate:7.1f} emails/s   "
        f"accept p50 {result.percentile(50):6.1f} ms  p99 {result.percentile(99):6.1f} ms"
        + (f"   ({result.failures} not accepted)" if result.failures else "")
    )


def flush_queue(queue_url: str) -> None:
    """Empty the bench's own queue db (FLUSHDB on that db only, never FLUSHALL)."""
    if queue_url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(queue_url)
        client.flushdb()
        client.close()


def count_by_outcome(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with Session(engine) as session:
        rows = session.execute(select(InboundEmail.outcome, func.count()).group_by(InboundEmail.outcome)).all()
    engine.dispose()
    return {outcome: count for outcome, count in rows}


@dataclass(frozen=True)
class Drain:
    processes: int
    threads: int
    emails: int
    seconds: float  # first processed row to the last
    startup: float  # worker start to the first processed row
    cpu_per_email_ms: float
    processing_cpu_per_email_ms: float  # from the first row processed: start-up (imports, flanker) left out
    database_cpu_per_email_ms: float  # PostgreSQL's backends for this database, from the first row processed

    @property
    def rate(self) -> float:
        return self.emails / self.seconds if self.seconds else float("inf")


def database_cpu(engine: Engine) -> dict[int, float]:
    """CPU seconds of each backend now serving the bench's database, by pid (PostgreSQL on
    this host, Linux /proc; empty otherwise): the workers and PostgreSQL share the cores."""
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as connection:
        pids = connection.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).all()
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def drain(env: dict[str, str], url: str, emails: int, processes: int, threads: int) -> Drain:
    """Start real `pawpost worker` processes and time them until no row is `received` and
    every posted parent message has its staff alerts planned.

    Counting only the rows that left `received` would stop the clock before outbound's
    alert planning, which may run later in the same workers (a task of its own)."""
    pawpost_bin = str(Path(sys.executable).with_name("pawpost"))
    engine = make_engine(url)
    received = select(func.count()).select_from(InboundEmail).where(InboundEmail.outcome == "received").scalar_subquery()
    unalerted = (
        select(func.count())
        .select_from(Message)
        .where(Message.author_type == "contact", Message.alerted_at.is_(None))
        .scalar_subquery()
    )
    pending = select(received, unalerted)
    started = time.perf_counter()
    workers = [
        subprocess.Popen([pawpost_bin, "worker", "--workers", str(threads)], env=env, stderr=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    first = last = None
    left_at_first = emails
    cpu_at_first = 0.0
    database_at_first: dict[int, float] = {}
    try:
        deadline = started + DRAIN_TIMEOUT_SECONDS
        while time.perf_counter() < deadline:
            with Session(engine) as session:
                still_received, still_unalerted = session.execute(pending).one()
            left = still_received + still_unalerted
            now = time.perf_counter()
            if first is None and still_received < emails:
                first, left_at_first = now, still_received
                cpu_at_first = sum(cpu_seconds(w) for w in workers)  # type: ignore[arg-type]
                database_at_first = database_cpu(engine)
            if left == 0:
                last = now
                break
            time.sleep(0.05)
        cpu = sum(cpu_seconds(w) for w in workers)  # type: ignore[arg-type]
        database_at_last = database_cpu(engine)
    finally:
        for worker in workers:
            stop_process(worker)  # type: ignore[arg-type]
        engine.dispose()
    if first is None or last is None:
        raise SystemExit(f"the worker did not drain the stored emails within {DRAIN_TIMEOUT_SECONDS} s")
    database = sum(seconds - database_at_first.get(pid, 0.0) for pid, seconds in database_at_last.items())
    return Drain(
        processes,
        threads,
        left_at_first,
        last - first,
        first - started,
        cpu / emails * 1000,
        (cpu - cpu_at_first) / left_at_first * 1000,
        database / left_at_first * 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("PAWPOST_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--queue-url", default=DEFAULT_QUEUE_URL, help="a queue a separate worker reads (redis://, sqlite:///)")
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--worker-processes", type=int, default=2)
    parser.add_argument("--worker-threads", type=int, default=2)
    args = parser.parse_args()
    if args.queue_url.startswith("memory:"):
        raise SystemExit("memory:// lives in one process: pawpost smtp would process in place, not a worker")

    prepare_database(args.database_url)
    flush_queue(args.queue_url)
    people = seed(args.database_url)
    # Each server first takes one email per session untimed (connections, statement
    # caches, prepared statements); pawpost stores and the worker posts those too.
    warm_up = args.sessions
    bare_emails = build_emails(people, warm_up + args.emails)
    pawpost_emails = build_emails(people, warm_up + args.emails)

    bare, port = start_process([sys.executable, "-c", BARE_SERVER], dict(os.environ))
    try:
        drive("warm-up", port, bare_emails[:warm_up], args.sessions)
        cpu_before = cpu_seconds(bare)
        baseline = drive("bare aiosmtpd", port, bare_emails[warm_up:], args.sessions)
        bare_cpu = cpu_seconds(bare) - cpu_before
    finally:
        stop_process(bare)

    with tempfile.TemporaryDirectory() as data_dir:
        env = dict(
            os.environ,
            PAWPOST_DATA_DIR=data_dir,
            PAWPOST_DATABASE_URL=args.database_url,
            PAWPOST_QUEUE_URL=args.queue_url,
            PAWPOST_REPLY_DOMAIN=REPLY_DOMAIN,
            PAWPOST_SMTP_LISTEN="127.0.0.1:0",
            PAWPOST_SECRET_KEY="bench-inbound-secret-key-0123456789",
        )
        pawpost_bin = str(Path(sys.executable).with_name("pawpost"))
        server, port = start_process([pawpost_bin, "smtp"], env)
        try:
            drive("warm-up", port, pawpost_emails[:warm_up], args.sessions)
            cpu_before = cpu_seconds(server)
            pawpost = drive("pawpost smtp", port, pawpost_emails[warm_up:], args.sessions)
            pawpost_cpu = cpu_seconds(server) - cpu_before
        finally:
            stop_process(server)
        stored = count_by_outcome(args.database_url)
        processing = drain(env, args.database_url, warm_up + args.emails, args.worker_processes, args.worker_threads)

    engine = make_engine(args.database_url)
    with Session(engine) as session:
        posted = session.scalar(select(func.count()).select_from(Message)) or 0
        mean_ms = session.scalar(select(func.avg(InboundEmail.processing_ms))) or 0
    engine.dispose()
    outcomes = count_by_outcome(args.database_url)
    flush_queue(args.queue_url)

    print(f"{args.emails} replies of ~{statistics.mean(len(d.raw) for d in pawpost_emails) / 1024:.1f} KB, {args.sessions} concurrent sessions, PostgreSQL")
    print(report(baseline))
    print(report(pawpost))
    print(f"accept ratio pawpost/bare: {pawpost.rate / baseline.rate:.2f} (target >= 0.6)")
    print(
        f"server CPU per email: bare {bare_cpu / args.emails * 1000:.2f} ms, pawpost smtp {pawpost_cpu / args.emails * 1000:.2f} ms"
    )
    print(f"stored before the worker started: {stored}")
    print(
        f"worker ({processing.processes} process(es) x {processing.threads} thread(s)): {processing.emails} emails in "
        f"{processing.seconds:.2f} s = {processing.rate:.1f} emails/s end to end "
        f"(start-up {processing.startup:.1f} s; worker CPU {processing.cpu_per_email_ms:.1f} ms per email with start-up, "
        f"{processing.processing_cpu_per_email_ms:.1f} ms from the first email on; "
        f"mean processing {float(mean_ms):.1f} ms per email)"
    )
    print(f"database CPU per email (its backends, from the first email on): {processing.database_cpu_per_email_ms:.1f} ms")
    print(f"end-to-end ratio worker/accept: {processing.rate / pawpost.rate:.3f} (target >= 0.15)")
    print(f"outcomes: {outcomes}; posted {posted} messages")
    if posted != warm_up + args.emails or pawpost.failures or outcomes != {"posted": warm_up + args.emails}:
        raise SystemExit("not every reply was posted exactly once")


if __name__ == "__main__":
    main()
