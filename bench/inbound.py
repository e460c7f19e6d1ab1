"""Inbound throughput: `pawpost smtp` on PostgreSQL against a bare aiosmtpd, in one run.

2,000 one-kilobyte replies from the families' parents, over 20 concurrent SMTP sessions
(each session sends its share back to back, as a relaying MTA does), first into a bare
aiosmtpd that answers 250 to everything, then into `pawpost smtp` (parse, classify, strip
quotes, route, post, store the raw email, commit, then 250). Both servers run as separate
processes and are driven by the same client, so the ratio says what Pawpost's work costs.
Accept latency is per email: from MAIL FROM to the 250 after the final dot.

    .venv/bin/python -m bench.inbound [--database-url postgresql://postgres@127.0.0.1:5432/bench_inbound]
        [--emails 2000] [--sessions 20] [--queue-url memory://]

The database is emptied and migrated first. The target ratio is >= 0.6.
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

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from threads import migrate
from threads.addresses import reply_address
from threads.db import make_engine, normalise_url
from threads.directory import ensure_thread, refresh_search_terms
from threads.models import Business, Contact, ContactAddress, Family, InboundEmail, Message

REPLY_DOMAIN = "reply.bench.test"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bench_inbound"
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


def prepare_database(url: str) -> None:
    """Create the bench database if needed, then empty and migrate it."""
    parsed = make_url(normalise_url(url))
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database})
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate.upgrade(url)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("PAWPOST_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--queue-url", default="memory://", help="where message_posted enqueues (memory://, redis://…)")
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args()

    prepare_database(args.database_url)
    people = seed(args.database_url)
    bare_emails = build_emails(people, args.emails)
    pawpost_emails = build_emails(people, args.emails)

    bare, port = start_process([sys.executable, "-c", BARE_SERVER], dict(os.environ))
    try:
        drive("warm-up", port, bare_emails[: args.sessions], args.sessions)
        cpu_before = cpu_seconds(bare)
        baseline = drive("bare aiosmtpd", port, bare_emails, args.sessions)
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
        )
        pawpost_bin = str(Path(sys.executable).with_name("pawpost"))
        server, port = start_process([pawpost_bin, "smtp"], env)
        try:
            cpu_before = cpu_seconds(server)
            pawpost = drive("pawpost smtp", port, pawpost_emails, args.sessions)
            pawpost_cpu = cpu_seconds(server) - cpu_before
        finally:
            stop_process(server)

    engine = make_engine(args.database_url)
    with Session(engine) as session:
        posted = session.scalar(select(func.count()).select_from(Message)) or 0
        stored = session.scalar(select(func.count()).select_from(InboundEmail).where(InboundEmail.outcome == "posted")) or 0
        mean_ms = session.scalar(select(func.avg(InboundEmail.processing_ms))) or 0
    engine.dispose()

    print(f"{args.emails} replies of ~{statistics.mean(len(d.raw) for d in pawpost_emails) / 1024:.1f} KB, {args.sessions} concurrent sessions, PostgreSQL")
    print(report(baseline))
    print(report(pawpost))
    print(f"ratio pawpost/bare: {pawpost.rate / baseline.rate:.2f} (target >= 0.6)")
    print(
        f"server CPU per email: bare {bare_cpu / args.emails * 1000:.2f} ms, "
        f"pawpost {pawpost_cpu / args.emails * 1000:.2f} ms (mean ingest in a worker thread {float(mean_ms):.1f} ms)"
    )
    print(f"posted {posted} messages, {stored} inbound emails stored as posted")
    if posted != args.emails or pawpost.failures:
        raise SystemExit("not every reply was posted exactly once")


if __name__ == "__main__":
    main()
