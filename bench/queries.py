"""Time the core's read paths on the seeded data set (`python -m bench.seed` first).

Each case calls the real function (`threads.reading.inbox`, `has_unread`, `threads.pages.thread_page`,
`threads.directory.search_families`) in a fresh session, as one portal request would,
over varied inputs (different seniors, threads, search prefixes), after a warm-up. The
p50 of a trivial `SELECT 1` round trip, measured in the same run, is the baseline: the
ratios to it are what compare across machines.

    .venv/bin/python -m bench.queries [--database-url URL] [-n 300] [-v]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bench.seed import RESULTS_DIR, URL_ENV, database_url
from threads.db import make_engine, make_session_factory
from threads.directory import search_families
from threads.models import Contact, Family, Message, Pet, Staff, Thread
from threads.pages import thread_page
from threads.reading import has_unread, inbox
from threads.search import search_messages

TARGET_P95_MS = 10.0
RESULTS_FILE = RESULTS_DIR / "queries.json"

# Prepares one request: loads what the request already has (signed-in staff, the thread)
# in the given session and returns the work to time.
Prepare = Callable[[Session, Any], Callable[[], object]]


@dataclass(frozen=True)
class Case:
    name: str
    prepare: Prepare
    inputs: list[Any]
    target: bool = True


@dataclass(frozen=True)
class Timing:
    name: str
    samples: list[float]
    target: bool

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.samples, n=20)[-1]

    @property
    def max(self) -> float:
        return max(self.samples)


def _inbox(session: Session, staff_id: int) -> Callable[[], object]:
    staff = session.get_one(Staff, staff_id)
    return lambda: inbox(session, staff, limit=50)


def _tab_dot(now: datetime) -> Prepare:
    def prepare(session: Session, staff_id: int) -> Callable[[], object]:
        staff = session.get_one(Staff, staff_id)
        return lambda: has_unread(session, staff, now)

    return prepare


def _thread_page(session: Session, thread_id: int) -> Callable[[], object]:
    thread = session.get_one(Thread, thread_id)
    return lambda: thread_page(session, thread.id, limit=50)


def _search(business_id: int) -> Prepare:
    def prepare(session: Session, query: str) -> Callable[[], object]:
        session.execute(text("SELECT 1"))  # the request already holds its connection
        return lambda: search_families(session, business_id, query)

    return prepare


def _message_search(staff_id: int, now: datetime) -> Prepare:
    def prepare(session: Session, query: str) -> Callable[[], object]:
        staff = session.get_one(Staff, staff_id)
        staff.business  # noqa: B018 - loaded before timing, as the signed-in request has it
        return lambda: search_messages(session, staff, query, now)

    return prepare


def _message_queries(session: Session, rng: random.Random, count: int) -> dict[str, list[str]]:
    """What staff type into message search, by how common the words are.

    "very common": the most frequent words of the messages (a pet's walk, "today"), each in
    a large share of all messages; "real messages": words of random messages (one whole
    word, two words, or a 3-letter prefix); "rare": a contact's surname (only bounce notices
    carry one) or a typo of a real word (no hit at all), the case an id-ordered walk
    alone would read the whole table for.
    """
    top = session.scalar(select(func.max(Message.id))) or 0
    seen: Counter[str] = Counter()
    mixed: list[str] = []
    while len(mixed) < count and top:
        body = session.scalar(select(Message.body).where(Message.id >= rng.randint(1, top)).order_by(Message.id).limit(1)) or ""
        words = [w for w in re.findall(r"[^\W_]{3,}", body.lower())]
        if not words:
            continue
        seen.update(dict.fromkeys(words, 1))  # one per message, in order: the same inputs in every process
        kind = rng.random()
        if kind < 0.5:
            mixed.append(rng.choice(words))
        elif kind < 0.8:
            mixed.append(" ".join(rng.sample(words, min(2, len(words)))))
        else:
            mixed.append(rng.choice(words)[:3])
    common = [word for word, _ in seen.most_common(12)]
    surnames = sorted({name.split()[-1].lower() for name in session.scalars(select(Contact.name).limit(2000))})
    typos = [word[:2] + "q" + word[2:] for word in sorted(seen) if len(word) > 4]
    rare = [rng.choice(surnames) if index % 2 else rng.choice(typos) for index in range(count)] if surnames and typos else []
    return {"very common": common * (count // max(1, len(common))), "real messages": mixed, "rare": rare}


def _select_one(session: Session, _: object) -> Callable[[], object]:
    session.execute(text("SELECT 1"))
    return lambda: session.execute(text("SELECT 1")).scalar_one()


def _search_queries(session: Session, business_id: int, rng: random.Random, count: int) -> tuple[list[str], list[str]]:
    """What people type: prefixes of real names and pets, some with a second word; and single letters."""
    families = session.scalars(
        select(Family.id).where(Family.business_id == business_id).order_by(func.random()).limit(count)
    ).all()
    queries = []
    for family_id in families:
        contact = session.scalars(select(Contact.name).where(Contact.family_id == family_id)).first() or ""
        pet = session.scalars(select(Pet.name).where(Pet.family_id == family_id)).first() or ""
        first, *rest = contact.split() or [""]
        word = rng.choice([pet, first, rest[-1] if rest else first])
        typed = word[: rng.randint(2, max(2, len(word)))]
        if rng.random() < 0.25 and rest:
            typed = f"{first} {rest[-1][: rng.randint(1, 4)]}"
        queries.append(typed)
    letters = list("abcdefghijklmnoprstvwz")
    return queries, letters


def build_cases(factory: sessionmaker[Session], rng: random.Random, now: datetime) -> list[Case]:
    with factory() as session:
        business_id = session.scalar(select(Thread.business_id).group_by(Thread.business_id).order_by(func.count().desc()).limit(1))
        if business_id is None:
            raise SystemExit("no threads: seed the database first (python -m bench.seed)")
        staff = session.scalars(select(Staff).where(Staff.business_id == business_id).order_by(Staff.id)).all()
        seniors = [s.id for s in staff if s.is_senior]
        basics = [s.id for s in staff if not s.is_senior]
        # Who has something unread decides which plan the tab dot needs: split them.
        with_unread = [s.id for s in staff if s.is_senior and has_unread(session, s, now)]
        all_read = [s for s in seniors if s not in with_unread]
        threads = session.scalars(
            select(Thread.id).where(Thread.business_id == business_id, Thread.message_count > 0)
        ).all()
        longest = session.scalars(
            select(Thread.id).where(Thread.business_id == business_id).order_by(Thread.message_count.desc()).limit(10)
        ).all()
        sample = rng.sample(list(threads), min(300, len(threads))) + list(longest)
        rng.shuffle(sample)
        queries, letters = _search_queries(session, business_id, rng, 300)
        message_queries = _message_queries(session, rng, 300)
    cases = [
        Case("inbox (senior, newest 50)", _inbox, seniors),
        Case("tab dot (senior with unread)", _tab_dot(now), with_unread),
        Case("tab dot (senior, all read)", _tab_dot(now), all_read),
        Case("tab dot (basic, today's families)", _tab_dot(now), basics),
        Case("thread page (newest 50)", _thread_page, sample),
        Case("family search (2+ letters)", _search(business_id), queries),
        Case("family search (1 letter)", _search(business_id), letters, target=False),
    ]
    for kind, words in message_queries.items():
        cases.append(Case(f"message search (senior, every thread; {kind} words)", _message_search(seniors[0], now), words))
        cases.append(Case(f"message search (basic, today's families; {kind} words)", _message_search(basics[0], now), words))
    return [case for case in cases if case.inputs]


def measure(
    factory: sessionmaker[Session], case: Case, iterations: int, warmup: int, clock: Callable[[], float] = time.perf_counter
) -> Timing:
    """Milliseconds per call, each in a fresh session; loading the inputs is not timed.

    `clock=time.process_time` counts this process's CPU only: on SQLite (which runs inside
    the process) that is the whole work, and other load on the host does not inflate it."""
    samples = []
    for index in range(warmup + iterations):
        with factory() as session:
            work = case.prepare(session, case.inputs[index % len(case.inputs)])
            began = clock()
            work()
            elapsed = clock() - began
        if index >= warmup:
            samples.append(elapsed * 1000)
    return Timing(case.name, samples, case.target)


@contextmanager
def captured_statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def explain(engine: Engine, factory: sessionmaker[Session], case: Case, worst: Any) -> None:
    """EXPLAIN ANALYZE every statement one call of the case sends, with the same parameters."""
    with factory() as session:
        work = case.prepare(session, worst)
        with captured_statements(engine) as statements:
            work()
    print(f"\n=== {case.name}: {worst!r} — {len(statements)} statement(s)")
    with engine.connect() as connection:
        for statement, parameters in statements:
            print("\n" + statement.strip())
            prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
            plan = connection.exec_driver_sql(prefix + statement, parameters)
            print("\n".join(str(row[-1]) for row in plan))


def _worst_input(timing: Timing, case: Case, warmup: int) -> Any:
    slowest = max(range(len(timing.samples)), key=timing.samples.__getitem__)
    return case.inputs[(warmup + slowest) % len(case.inputs)]


def report(baseline: Timing, timings: list[Timing]) -> str:
    base = baseline.p50
    lines = [
        f"| query | n | p50 ms | p95 ms | max ms | p50 / SELECT 1 | p95 / SELECT 1 | p95 < {TARGET_P95_MS:g} ms |",
        "|---|---:|---:|---:|---:|---:|---:|:---:|",
        f"| SELECT 1 round trip (baseline) | {len(baseline.samples)} | {base:.3f} | {baseline.p95:.3f} "
        f"| {baseline.max:.3f} | 1.0 | {baseline.p95 / base:.1f} | |",
    ]
    for t in timings:
        verdict = ("yes" if t.p95 < TARGET_P95_MS else "**no**") if t.target else "(no target)"
        lines.append(
            f"| {t.name} | {len(t.samples)} | {t.p50:.2f} | {t.p95:.2f} | {t.max:.2f} "
            f"| {t.p50 / base:.0f} | {t.p95 / base:.0f} | {verdict} |"
        )
    return "\n".join(lines)


def data_size(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as session:
        sizes = {}
        for table in ("families", "threads", "messages", "read_cursors", "search_terms", "appointments"):
            sizes[table] = session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--database-url", help=f"default: ${URL_ENV} or the local test_bench database")
    parser.add_argument("-n", "--iterations", type=int, default=300, help="timed calls per case")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls per case first")
    parser.add_argument("--seed", type=int, default=7, help="random seed for the inputs")
    parser.add_argument("--only", help="run only the cases whose name contains this text")
    parser.add_argument("--cpu", action="store_true", help="time this process's CPU, not the wall clock (SQLite: all the work)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print EXPLAIN ANALYZE of each case's slowest input")
    args = parser.parse_args(argv)
    url = database_url(args.database_url)
    engine = make_engine(url, pool_pre_ping=False)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    sizes = data_size(factory)
    print(f"database {engine.url.render_as_string(hide_password=True)}: " + ", ".join(f"{v:,} {k}" for k, v in sizes.items()))
    cases = build_cases(factory, random.Random(args.seed), now)
    if args.only:
        cases = [case for case in cases if args.only in case.name]
    clock = time.process_time if args.cpu else time.perf_counter
    baseline = measure(factory, Case("SELECT 1", _select_one, [None]), args.iterations, args.warmup, clock)
    timings = [measure(factory, case, args.iterations, args.warmup, clock) for case in cases]
    table = report(baseline, timings)
    print(table)
    RESULTS_DIR.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(
        json.dumps(
            {
                "measured_at": now.isoformat(),
                "sizes": sizes,
                "iterations": args.iterations,
                "select_1_p50_ms": baseline.p50,
                "cases": {t.name: {"p50_ms": t.p50, "p95_ms": t.p95, "max_ms": t.max} for t in timings},
            },
            indent=2,
        )
        + "\n"
    )
    if args.verbose:
        for case, timing in zip(cases, timings, strict=True):
            explain(engine, factory, case, _worst_input(timing, case, args.warmup))
    missed = [t.name for t in timings if t.target and t.p95 >= TARGET_P95_MS]
    if missed:
        print("p95 target missed: " + ", ".join(missed))
    engine.dispose()
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
