"""Where the worker's time goes for one typical reply: CPU and statements per email.

Stores the same ~1.2 KB replies as `bench/inbound.py` directly as `received` rows (what
`pawpost smtp` leaves), then processes them in this one process, one chunk after the
other, and prints the process CPU time per email (user +
system, not wall: the figure does not move with the host's load), the SQL statements
per email (counted by a SQLAlchemy `before_cursor_execute` event) and, with
`--profile`, cProfile's top functions by cumulative CPU time. The queue's pushes that
follow a post (the alert delivery, the digest and escalation checks) go to the given
queue, so their round trips are counted too. The emails are handed to
`inbound.tasks.process_chunk` in chunks of `--chunk` (the worker's `BATCH_CHUNK`), as a
`process_inbound_batch` task does. On PostgreSQL it also prints the CPU the database's
own backend processes spent per email (Linux /proc of the backends serving this
database; the server runs on this host): the worker and PostgreSQL share the cores.

    .venv/bin/python -m bench.ingest_profile --database-url postgresql://postgres@127.0.0.1:5432/NAME \\
        --queue-url redis://127.0.0.1:6379/13 [--emails 400] [--chunk 4] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from collections import Counter

from pathlib import Path

from sqlalchemy import event, insert, select, text
from sqlalchemy.pool import NullPool

from bench.database import prepare_database
from bench.inbound import REPLY_DOMAIN, build_emails, flush_queue, seed
from inbound.accept import received_row
from inbound.ingest import process_stored_email
from inbound.parse import parse_headers
from inbound.tasks import BATCH_CHUNK, process_chunk
from inbound.route import Recipient
from outbound.queue import configure_queue, session_factory
from pawpost.settings import Settings
from threads.addresses import reply_address
from threads.db import make_engine
from threads.models import InboundEmail, Thread
from threads.types import utcnow


def store(sessions, people, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    """The rows `pawpost smtp` would have stored for `count` replies (its own `received_row`)."""
    with sessions() as session:
        threads = {reply_address(t, REPLY_DOMAIN): t for t in session.scalars(select(Thread))}
        rows = []
        for d in build_emails(people, count):
            thread = threads[d.recipient]
            recipient = Recipient("thread", d.recipient, thread_id=thread.id, business_id=thread.business_id)
            rows.append(received_row(d.sender, [recipient], d.raw, utcnow(), parse_headers(d.raw)))
    with sessions() as session, session.begin():
        return [session.scalar(insert(InboundEmail).values(**row).returning(InboundEmail.id)) for row in rows]


def backend_cpu(url: str) -> dict[int, float]:
    """CPU seconds (user + system) of every other backend now serving this PostgreSQL database, by pid."""
    engine = make_engine(url, poolclass=NullPool)  # its own connection: the worker's stays in its pool
    with engine.connect() as connection:
        pids = connection.scalars(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        ).all()
    engine.dispose()
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # not on this host, or gone
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--queue-url", default="memory://")
    parser.add_argument("--emails", type=int, default=400)
    parser.add_argument("--warm-up", type=int, default=40)
    parser.add_argument("--chunk", type=int, default=BATCH_CHUNK, help="emails per process_chunk call (1: one by one)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="cumulative", help="cProfile order: cumulative, tottime...")
    parser.add_argument("--statements", action="store_true", help="print the statements run per email, by kind")
    args = parser.parse_args()

    prepare_database(args.database_url)
    flush_queue(args.queue_url) if not args.queue_url.startswith("memory:") else None
    people = seed(args.database_url)
    settings = Settings.from_env(
        dict(
            os.environ,
            PAWPOST_DATABASE_URL=args.database_url,
            PAWPOST_QUEUE_URL=args.queue_url,
            PAWPOST_REPLY_DOMAIN=REPLY_DOMAIN,
        )
    )
    configure_queue(settings)
    sessions = session_factory()
    engine = sessions.kw["bind"]
    statements: Counter[str] = Counter()

    @event.listens_for(engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements[" ".join(statement.split())[:90]] += 1

    warm = store(sessions, people, args.warm_up)
    for inbound_id in warm:
        process_stored_email(sessions, settings, inbound_id)
    ids = store(sessions, people, args.emails)
    statements.clear()
    postgresql = engine.dialect.name == "postgresql"
    database_before = backend_cpu(args.database_url) if postgresql else {}
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for start in range(0, len(ids), args.chunk):
        process_chunk(sessions, settings, ids[start : start + args.chunk])
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    database_after = backend_cpu(args.database_url) if postgresql else {}
    database_cpu = sum(after - database_before.get(pid, 0.0) for pid, after in database_after.items())
    with sessions() as session:
        outcomes = Counter(session.scalars(select(InboundEmail.outcome).where(InboundEmail.id.in_(ids))))
    total = sum(statements.values())
    print(f"{args.emails} replies, {args.database_url.split('://')[0]}, queue {args.queue_url.split('://')[0]}: {dict(outcomes)}")
    print(f"worker CPU per email: {cpu / args.emails * 1000:.2f} ms (wall {wall / args.emails * 1000:.2f} ms), chunks of {args.chunk}")
    if postgresql:
        print(f"database backend CPU per email: {database_cpu / args.emails * 1000:.2f} ms")
    print(f"statements per email: {total / args.emails:.1f}")
    if args.statements:
        for statement, n in statements.most_common():
            print(f"  {n / args.emails:5.2f}  {statement}")
    if profiler:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(45)


if __name__ == "__main__":
    main()
