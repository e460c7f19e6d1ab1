"""Fill PostgreSQL with one big business: 10,000 families and 1,000,000 messages.

Every row is generated in Python from a fixed random seed and streamed with COPY: one
INSERT per post would take hours, COPY takes seconds. Ids are assigned here rather than
by the sequences, so threads, cursors and appointments can point at rows before they are
written; the sequences are moved past them at the end so the app keeps inserting.

The shape aims at what a busy multi-site business looks like after a year: thread length
is heavy-tailed (most families exchange a few dozen messages, a handful thousands), senior
staff have read most threads (a few of them everything, the worst case for the tab dot),
basic staff have a day of appointments. `bench/results/seed.json` tells the other
benchmarks which ids and sign-ins to use.

    .venv/bin/python -m bench.seed [--database-url URL] [--families N] [--messages N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import time
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from bench.database import create_database_if_missing
from threads.addresses import new_reply_token
from threads.directory import normalise_words
from threads.migrate import recreate_schema
from threads.passwords import hash_password

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test_bench"
URL_ENV = "PAWPOST_BENCH_DATABASE_URL"
RESULTS_DIR = Path(__file__).with_name("results")
SEED_FILE = RESULTS_DIR / "seed.json"

PASSWORD = "bench-paws-password"
MAIL_DOMAIN = "mail.pawbench.example"
STAFF_DOMAIN = "pawbench.example"
TIMEZONE = "America/New_York"
HISTORY_DAYS = 365
ADMINS, SENIORS, BASICS = 2, 10, 40
# Seniors who have read every thread: the tab dot must look at all of them to say "no".
INBOX_ZERO_SENIORS = 3
LONGEST_THREAD_SHARE = 0.03
BATCH_ROWS = 50_000

FIRST_NAMES = (
    "Emma Liam Olivia Noah Ava Ethan Mia Lucas Sofía Mateo Zoë Lukas Chloé José Renée Søren Björn "
    "François Anika Rohan Linh Minh Siobhan Declan Giulia Marco Zofia Jan Chioma Emeka Isabella Mason "
    "Amelia Logan Harper Elijah Evelyn James Abigail Benjamin Emily Henry Ella Jackson Scarlett Sebastian "
    "Grace Aiden Lily Matthew Aria Samuel Hannah David Layla Joseph Nora Carter Riley Owen Zoey Wyatt "
    "Hazel John Aurora Jack Violet Luke Stella Jayden Lucy Dylan Paisley Levi Audrey Isaac Claire "
    "Gabriel Skylar Julian Anna Anthony Caroline Jaxon Genesis Lincoln Aaliyah Joshua Kennedy Andrew "
    "Allison Christopher Maya Nathan Sarah Thomas Madelyn Leo Adeline Isaiah Alexa Charles Ariana Caleb "
    "Elena Josiah Gabriella Ryan Naomi Asher Alice Christian Sadie Hunter Hailey Jonathan Eva Eli Emilia "
    "Aarav Priya Ananya Vikram Mei Wei Hiroshi Yuki Haruto Sakura Ngozi Kwame Amara Tariq Leila Omar "
    "Fatima Dmitri Anastasia Ivan Katarzyna Piotr Ingrid Lars Astrid Mads Inès Théo Léa Raphaël Niamh"
).split()
SURNAMES = (
    "Johnson García Nguyen O'Brien Müller Patel Smith Williams Brown Rossi Kowalski Okafor Jones Miller "
    "Davis Rodríguez Martínez Hernández López González Wilson Anderson Thomas Taylor Moore Jackson Martin "
    "Lee Pérez Thompson White Harris Sánchez Clark Ramírez Lewis Robinson Walker Young Allen King Wright "
    "Scott Torres Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gómez "
    "Phillips Evans Turner Díaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook "
    "Rogers Gutiérrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson "
    "Watson Brooks Chávez Wood James Bennett Gray Mendoza Ruiz Hughes Price Álvarez Castillo Sanders "
    "Shah Kumar Singh Chen Wang Zhang Liu Yamamoto Tanaka Suzuki Sato Kowalczyk Nowak Wiśniewski Schmidt "
    "Schneider Fischer Weber Becker Hoffmann Schäfer Dubois Lefèvre Moreau Fontaine Bianchi Romano "
    "Ferrari Esposito Colombo Andersson Johansson Karlsson Nielsen Hansen Jensen Novák Dvořák Horváth "
    "Papadopoulos Ivanova Petrov Sokolov Mensah Adeyemi Okonkwo Haddad Nasser Cohen Levi Friedman"
).split()
PET_NAMES = (
    "Bella Max Luna Charlie Lucy Cooper Bailey Daisy Sadie Lola Buddy Molly Stella Tucker Bear Zoey Duke "
    "Harley Maggie Jax Bentley Chloe Sophie Riley Lily Penny Milo Rocky Gracie Teddy Coco Winston Nala "
    "Churro Mango Biscuit Pepper Belle Oliver Leo Loki Rosie Ruby Roxy Piper Ellie Finn Murphy Ollie "
    "Oreo Peanut Pumpkin Nova Willow Hazel Ginger Maple Olive Marley Bruno Diesel Gus Zeus Apollo Thor "
    "Kona Koda Ranger Scout Shadow Sunny Toby Waffles Ziggy Noodle Pickles Tofu Mochi Sushi Nacho "
    "Pretzel Muffin Cookie Bean Peaches Honey Clover Juniper Sage Basil Fig Dolly Frankie Georgie "
    "Hank Indie Jasper Kiki Lulu Misty Nugget Otis Poppy Quincy Remy Simba Tango Umi Vinnie Wally Yoshi "
    "Zara Élodie Chépa Fído Nöel Brûlée Crème Jojo Pip Boo"
).split()
PETS = (("dog", "Labrador Retriever"), ("dog", "Golden Retriever"), ("dog", "French Bulldog"),
        ("dog", "Border Collie"), ("dog", "Beagle"), ("dog", "Dachshund"), ("dog", "Poodle"),
        ("dog", "mixed"), ("cat", "Tabby"), ("cat", "Maine Coon"), ("rabbit", "Lop"), ("bird", "Cockatiel"))
STAFF_BODIES = (
    "{pet} had a great walk today, lots of sniffing and one very muddy puddle.",
    "Quick update: {pet} ate all of breakfast and is napping in the sun.",
    "Hi {name}! We're running about 15 minutes late today, sorry for the wait.",
    "{pet} made a new friend at daycare and played fetch for an hour.",
    "Reminder: {pet}'s grooming appointment is tomorrow at 10.\nPlease bring the usual brush.",
    "All done! {pet} is fed, watered and the back door is locked.",
    "Photos from today's adventure with {pet} are in the app.",
    "We noticed {pet} was limping a little on the left paw. Nothing serious, just keeping an eye on it.",
    "Thanks {name}, noted. We'll give {pet} the medication with dinner.",
    "Could you leave an extra bag of food? {pet} is almost out.",
)
CONTACT_BODIES = (
    "Thank you so much! {pet} looks so happy.",
    "Can you do an extra walk on Thursday around noon?",
    "Hi, the key is under the blue pot today.\nThanks!",
    "Is {pet} eating okay? She was picky this morning.",
    "Perfect, see you tomorrow.",
    "We'll be back Sunday evening instead of Saturday, can {pet} stay an extra night?",
    "Please don't give {pet} treats with chicken, the vet says allergy.",
    "Great, thanks for letting us know!",
    "Running late from work, could you stay 20 more minutes with {pet}?",
    "Love the photos 😍",
)
SYSTEM_BODIES = ("Appointment rescheduled.", "Email to {name} bounced; please check the address.")
SERVICES = (("walk", 1), ("daycare", 8), ("grooming", 2), ("drop-in", 1))


def database_url(option: str | None) -> str:
    """The benchmark database: option, then PAWPOST_BENCH_DATABASE_URL, then the local default."""
    return option or os.environ.get(URL_ENV) or DEFAULT_DATABASE_URL


def libpq_url(url: str) -> str:
    """What psycopg.connect accepts: the SQLAlchemy driver suffix removed."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _copy_text(value: Any) -> str:
    """One field of COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _line(*values: Any) -> str:
    return "\t".join(_copy_text(v) for v in values) + "\n"


class Clock:
    """Whole seconds since a UTC midnight as COPY timestamps: fast enough for a million rows."""

    def __init__(self, midnight: datetime) -> None:
        self.midnight = midnight
        self._days: dict[int, str] = {}

    def text(self, seconds: int) -> str:
        day, rest = divmod(seconds, 86400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = (self.midnight + timedelta(days=day)).strftime("%Y-%m-%d")
        hours, rest = divmod(rest, 3600)
        minutes, secs = divmod(rest, 60)
        return f"{prefix} {hours:02d}:{minutes:02d}:{secs:02d}"


@dataclass
class StaffMember:
    id: int
    name: str
    email: str
    role: str


@dataclass
class FamilyPlan:
    """A family and its thread (same id): who is in it and who usually serves it."""

    id: int
    name: str
    contacts: list[tuple[int, str]]
    pets: list[str]
    team: tuple[int, ...]
    message_ids: list[int] = field(default_factory=list)
    last_at: int = 0


@dataclass
class Dataset:
    """Everything generated in memory before the first COPY; messages stay compact."""

    now: datetime
    clock: Clock
    staff: list[StaffMember]
    families: list[FamilyPlan]
    message_keys: list[int]
    message_authors: list[int]
    key_shift: int
    # (thread id, author code) → that author's newest message id in the thread.
    own_last: dict[tuple[int, int], int]
    # staff id → families they are scheduled with today (for the portal benchmark's basic).
    scheduled_today: dict[int, list[int]] = field(default_factory=dict)


def _staff(rng: random.Random) -> list[StaffMember]:
    staff = []
    roles = ["admin"] * ADMINS + ["senior"] * SENIORS + ["basic"] * BASICS
    plain_first = [n for n in FIRST_NAMES if n.isascii()]
    plain_last = [n for n in SURNAMES if n.isascii() and n.isalpha()]
    for number, role in enumerate(roles, start=1):
        first, last = rng.choice(plain_first), rng.choice(plain_last)
        email = f"{first}.{last}.{number}@{STAFF_DOMAIN}".lower()
        staff.append(StaffMember(number, f"{first} {last}", email, role))
    return staff


def _families(rng: random.Random, count: int, basics: list[int]) -> list[FamilyPlan]:
    families = []
    for number in range(1, count + 1):
        surname = rng.choice(SURNAMES)
        name = f"{surname}-{rng.choice(SURNAMES)}" if rng.random() < 0.08 else surname
        other = surname if rng.random() < 0.8 else rng.choice(SURNAMES)
        contacts = [(2 * number - 1, f"{rng.choice(FIRST_NAMES)} {surname}"), (2 * number, f"{rng.choice(FIRST_NAMES)} {other}")]
        pets = rng.sample(PET_NAMES, rng.choices((1, 2, 3), weights=(60, 30, 10))[0])
        families.append(FamilyPlan(number, name, contacts, pets, tuple(rng.sample(basics, 3))))
    return families


def _thread_sizes(rng: random.Random, threads: int, total: int) -> list[int]:
    """Heavy-tailed message counts (Pareto), 3% of threads empty, the longest capped."""
    weights = [0.0 if rng.random() < 0.03 else rng.paretovariate(1.3) for _ in range(threads)]
    scale = total / sum(weights)
    cap = max(1, int(total * LONGEST_THREAD_SHARE))
    sizes = [min(cap, int(w * scale)) for w in weights]
    busy = [i for i, w in enumerate(weights) if w > 0]
    for _ in range(total - sum(sizes)):
        sizes[rng.choice(busy)] += 1
    return sizes


def generate(rng: random.Random, families_count: int, messages_count: int, now: datetime) -> Dataset:
    """Families, staff and the order of every message, with ids growing with time."""
    start = (now - timedelta(days=HISTORY_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = Clock(start)
    end = int((now - start).total_seconds()) - 600
    staff = _staff(rng)
    basics = [s.id for s in staff if s.role == "basic"]
    seniors = [s.id for s in staff if s.role != "basic"]
    families = _families(rng, families_count, basics)
    shift = families_count.bit_length()
    keys: list[int] = []
    for index, size in enumerate(_thread_sizes(rng, families_count, messages_count)):
        begin = int(rng.random() * 0.9 * end)
        keys.extend(rng.randint(begin, end) << shift | index for _ in range(size))
    keys.sort()
    mask = (1 << shift) - 1
    authors: list[int] = []
    own_last: dict[tuple[int, int], int] = {}
    for message_id, key in enumerate(keys, start=1):
        family = families[key & mask]
        roll = rng.random()
        if roll < 0.02:
            author = 0
        elif roll < 0.47:
            author = -family.contacts[0 if rng.random() < 0.7 else 1][0]
        elif roll < 0.75:
            author = rng.choice(family.team)
        else:
            author = rng.choice(seniors)
        authors.append(author)
        family.message_ids.append(message_id)
        family.last_at = key >> shift
        if author:
            own_last[(family.id, author)] = message_id
    return Dataset(now, clock, staff, families, keys, authors, shift, own_last)


def _batched(lines: Iterable[str]) -> Iterator[str]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= BATCH_ROWS:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def copy_rows(cursor: psycopg.Cursor[Any], table: str, columns: str, lines: Iterable[str]) -> None:
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for chunk in _batched(lines):
            copy.write(chunk)


def _search_terms(family: FamilyPlan) -> Iterator[tuple[str, str]]:
    """The words `threads.directory.refresh_search_terms` stores, in the same way."""
    seen: set[tuple[str, str]] = set()
    sources = [("family", family.name)] + [("contact", n) for _, n in family.contacts] + [("pet", p) for p in family.pets]
    for source, text in sources:
        for word in normalise_words(text):
            if (word, source) not in seen:
                seen.add((word, source))
                yield word[:100], source


def _address(name: str, number: int) -> str:
    return ".".join(normalise_words(name)) + f".{number}@parents.test"


def write_directory(cursor: psycopg.Cursor[Any], data: Dataset, rng: random.Random, business_id: int, password_hash: str) -> None:
    """Business, staff, families with contacts, addresses, pets, search words and threads."""
    now = data.now
    cursor.execute(
        "INSERT INTO businesses (id, slug, name, timezone, sender_name, created_at) VALUES (%s, %s, %s, %s, %s, %s)",
        (business_id, "bench-paws", "Bench Paws Pet Care", TIMEZONE, "Bench Paws", now.replace(tzinfo=None)),
    )
    copy_rows(
        cursor,
        "staff",
        "id, business_id, external_id, name, email, role, password_hash, active, created_at, updated_at",
        (_line(s.id, business_id, f"staff-{s.id}", s.name, s.email, s.role, password_hash, True, now, now) for s in data.staff),
    )
    families = data.families
    copy_rows(
        cursor,
        "families",
        "id, business_id, external_id, name, created_at, updated_at",
        (_line(f.id, business_id, f"fam-{f.id:05d}", f.name, now, now) for f in families),
    )
    copy_rows(
        cursor,
        "contacts",
        "id, family_id, external_id, name, is_primary",
        (_line(cid, f.id, f"c{n}", name, n == 0) for f in families for n, (cid, name) in enumerate(f.contacts)),
    )
    copy_rows(
        cursor,
        "contact_addresses",
        "id, contact_id, email, verified, bouncing",
        (_line(cid, cid, _address(name, cid), True, False) for f in families for cid, name in f.contacts),
    )
    pet_rows = []
    for f in families:
        for name in f.pets:
            species, breed = rng.choice(PETS)
            pet_rows.append((len(pet_rows) + 1, f.id, name, species, breed))
    copy_rows(cursor, "pets", "id, family_id, name, species, breed", (_line(*row) for row in pet_rows))
    terms = ((f.id, word, source) for f in families for word, source in _search_terms(f))
    copy_rows(
        cursor,
        "search_terms",
        "business_id, family_id, term, source",
        (_line(business_id, fid, word, source) for fid, word, source in terms),
    )
    clock = data.clock
    copy_rows(
        cursor,
        "threads",
        "id, business_id, family_id, reply_token, root_message_id, active, last_message_id, last_message_at, message_count, created_at",
        (
            _line(
                f.id,
                business_id,
                f.id,
                new_reply_token(),
                f"thread.{secrets.token_hex(12)}@{MAIL_DOMAIN}",
                True,
                f.message_ids[-1] if f.message_ids else None,
                clock.text(f.last_at) if f.message_ids else None,
                len(f.message_ids),
                now,
            )
            for f in families
        ),
    )


def _message_lines(data: Dataset, alerted: bool) -> Iterator[str]:
    """COPY lines of every message; `alerted` adds `alerted_at` (history's alerts were decided)."""
    staff_names = {s.id: s.name.split()[0] for s in data.staff}
    families = data.families
    mask = (1 << data.key_shift) - 1
    clock = data.clock
    escaped = [[b.replace("\n", "\\n") for b in bodies] for bodies in (STAFF_BODIES, CONTACT_BODIES, SYSTEM_BODIES)]
    staff_bodies, contact_bodies, system_bodies = escaped
    pick = random.Random(1).choice
    none = "\t\\N" if alerted else ""
    for message_id, (key, author) in enumerate(zip(data.message_keys, data.message_authors, strict=True), start=1):
        family = families[key & mask]
        pet = pick(family.pets)
        created = clock.text(key >> data.key_shift)
        if author > 0:
            body = pick(staff_bodies).format(pet=pet, name=family.contacts[0][1].split()[0])
            yield f"{message_id}\t{family.id}\tstaff\t{author}\t\\N\t{body}\tportal\t\\N\t{created}{none}\n"
        elif author < 0:
            body = pick(contact_bodies).format(pet=pet, name=staff_names[family.team[0]])
            done = f"\t{created}" if alerted else ""
            yield f"{message_id}\t{family.id}\tcontact\t\\N\t{-author}\t{body}\temail\tbench.{message_id}@parents.test\t{created}{done}\n"
        else:
            body = pick(system_bodies).format(pet=pet, name=family.contacts[0][1])
            yield f"{message_id}\t{family.id}\tsystem\t\\N\t\\N\t{body}\tsystem\t\\N\t{created}{none}\n"


@contextmanager
def constraints_deferred(cursor: psycopg.Cursor[Any], table: str) -> Iterator[None]:
    """Load without the table's secondary indexes and foreign keys, then rebuild them.

    What pg_restore does: one sort per index and one join per foreign key beat a million
    B-tree insertions and trigger calls. The primary key stays (ids arrive in order).
    """
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype IN ('f', 'u') ORDER BY conname",
        (table,),
    )
    constraints = cursor.fetchall()
    for name, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        (table, table),
    )
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    for _, definition in indexes:
        cursor.execute(definition)
    for name, definition in constraints:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def write_messages(cursor: psycopg.Cursor[Any], data: Dataset) -> None:
    columns = "id, thread_id, author_type, staff_id, contact_id, body, source, email_message_id, created_at"
    cursor.execute("SELECT 1 FROM information_schema.columns WHERE table_name = 'messages' AND column_name = 'alerted_at'")
    alerted = cursor.fetchone() is not None
    if alerted:  # the outbound sweep's marker: staff alerts for past parent messages were sent
        columns += ", alerted_at"
    with constraints_deferred(cursor, "messages"):
        copy_rows(cursor, "messages", columns, _message_lines(data, alerted))


def _cursor_lines(data: Dataset, rng: random.Random, inbox_zero: set[int]) -> Iterator[str]:
    """Read cursors: seniors on most threads, everyone where they wrote (posting moves it).

    A senior last caught up at some moment of the past eight hours: what arrived since is
    unread, as is a rare older thread they never opened. Inbox-zero seniors read it all.
    """
    now = data.now
    shift = data.key_shift
    keys = data.message_keys
    seniors = [s.id for s in data.staff if s.role != "basic"]
    end = keys[-1] >> shift if keys else 0
    caught_up = {s: end if s in inbox_zero else end - rng.randint(600, 8 * 3600) for s in seniors}
    for family in data.families:
        ids = family.message_ids
        if not ids:
            continue
        positions: dict[int, int] = {}
        for senior in seniors:
            if senior not in inbox_zero and rng.random() < 0.01:
                continue
            seen = bisect_right(ids, caught_up[senior], key=lambda i: keys[i - 1] >> shift)
            if seen:
                positions[senior] = ids[seen - 1]
        for author in (*family.team, *seniors, *(-cid for cid, _ in family.contacts)):
            own = data.own_last.get((family.id, author))
            if own is not None:
                positions[author] = max(positions.get(author, 0), own)
        primary = -family.contacts[0][0]
        if rng.random() < 0.8:
            positions[primary] = ids[-1]
        for author, message_id in positions.items():
            kind, person = ("staff", author) if author > 0 else ("contact", -author)
            yield _line(family.id, kind, person, message_id, now)


def write_activity(cursor: psycopg.Cursor[Any], data: Dataset, rng: random.Random, inbox_zero: set[int]) -> None:
    """Read and notified cursors, then appointments around today."""
    columns = "thread_id, person_kind, person_id, message_id, updated_at"
    copy_rows(cursor, "read_cursors", columns, _cursor_lines(data, rng, inbox_zero))
    notified = (
        _line(f.id, "contact", cid, f.message_ids[-1], data.now)
        for f in data.families
        if f.message_ids
        for cid, _ in f.contacts
    )
    copy_rows(cursor, "notified_cursors", columns, notified)
    appointments, assignments = _appointments(data, rng)
    copy_rows(
        cursor,
        "appointments",
        "id, business_id, family_id, external_id, service, starts_at, ends_at, status, updated_at",
        (_line(*row, data.now) for row in appointments),
    )
    copy_rows(cursor, "appointment_staff", "appointment_id, staff_id", (_line(*row) for row in assignments))


def business_day(now: datetime) -> date:
    return now.astimezone(ZoneInfo(TIMEZONE)).date()


def day_start(day: date) -> datetime:
    """Local midnight of the business, in UTC (as `threads.schedule.day_bounds` computes it)."""
    return datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(TIMEZONE)).astimezone(UTC)


def _appointments(data: Dataset, rng: random.Random) -> tuple[list[tuple[Any, ...]], list[tuple[int, int]]]:
    """Thirty days back and two weeks ahead: 5–9 visits a day per basic, a few per senior."""
    today = business_day(data.now)
    portfolio: dict[int, list[int]] = {}
    for family in data.families:
        for member in family.team:
            portfolio.setdefault(member, []).append(family.id)
    seniors = [s.id for s in data.staff if s.role == "senior"]
    rows: list[tuple[Any, ...]] = []
    assignments: list[tuple[int, int]] = []
    everyone = [f.id for f in data.families]
    for offset in range(-30, 15):
        day = today + timedelta(days=offset)
        start_of_day = day_start(day)
        work = [(b, rng.sample(families, min(len(families), rng.randint(5, 9)))) for b, families in portfolio.items()]
        work += [(s, rng.sample(everyone, rng.randint(0, 2))) for s in seniors]
        for member, family_ids in work:
            for family_id in family_ids:
                service, hours = rng.choice(SERVICES)
                if rng.random() < 0.03:
                    service, hours = "boarding", 24 * rng.randint(2, 5)
                starts = start_of_day + timedelta(hours=rng.randint(7, 17), minutes=rng.choice((0, 15, 30, 45)))
                status = "cancelled" if rng.random() < 0.03 else ("completed" if offset < 0 else "scheduled")
                number = len(rows) + 1
                rows.append((number, 1, family_id, f"appt-{number}", service, starts, starts + timedelta(hours=hours), status))
                assignments.append((number, member))
                if offset == 0 and status != "cancelled":
                    data.scheduled_today.setdefault(member, []).append(family_id)
    return rows, assignments


def finish(cursor: psycopg.Cursor[Any]) -> None:
    """Move every id sequence past the ids written here, so the app can insert again."""
    cursor.execute(
        """
        SELECT c.relname, a.attname, pg_get_serial_sequence(c.relname, a.attname)
        FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
          AND a.attnum > 0 AND NOT a.attisdropped  -- a migration's dropped column keeps a row here
          AND pg_get_serial_sequence(c.relname, a.attname) IS NOT NULL
        """
    )
    for table, column, sequence in cursor.fetchall():
        cursor.execute(f"SELECT setval(%s, coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)", (sequence,))


def check_consistency(cursor: psycopg.Cursor[Any]) -> None:
    """The thread columns the inbox relies on must match the messages exactly."""
    cursor.execute(
        """
        SELECT count(*) FROM threads t
        LEFT JOIN (SELECT thread_id, max(id) AS last_id, count(*) AS n, max(created_at) AS last_at
                   FROM messages GROUP BY thread_id) m ON m.thread_id = t.id
        WHERE t.last_message_id IS DISTINCT FROM m.last_id
           OR t.message_count <> coalesce(m.n, 0)
           OR t.last_message_at IS DISTINCT FROM m.last_at
        """
    )
    (wrong,) = cursor.fetchone() or (0,)
    if wrong:
        raise SystemExit(f"seed is inconsistent: {wrong} threads disagree with their messages")


def reset_schema(url: str, force: bool) -> None:
    """Drop everything in the benchmark database and migrate it to the newest schema."""
    create_database_if_missing(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        seeded = connection.execute("SELECT to_regclass('public.businesses') IS NOT NULL").fetchone()
        if seeded and seeded[0] and not force:
            others = connection.execute("SELECT count(*) FROM businesses WHERE slug <> 'bench-paws'").fetchone()
            if others and others[0]:
                raise SystemExit("this database holds other businesses; refusing to drop it (use --force)")
    recreate_schema(url)


def _summary(data: Dataset, business_id: int, inbox_zero: set[int], seconds: float, url: str) -> dict[str, Any]:
    today = business_day(data.now)
    by_length = sorted(data.families, key=lambda f: len(f.message_ids))
    longest = by_length[-1]
    senior = next(s for s in data.staff if s.role == "senior" and s.id not in inbox_zero)
    basic = next(s for s in data.staff if s.role == "basic")
    basic_families = [f for f in data.families if f.id in data.scheduled_today.get(basic.id, ()) and f.message_ids]
    typical = by_length[len(by_length) // 2]
    pet = typical.pets[0]
    return {
        "database_url": url,
        "seeded_at": data.now.isoformat(),
        "seconds": round(seconds, 1),
        "business_id": business_id,
        "business_today": today.isoformat(),
        "password": PASSWORD,
        "admin_email": next(s.email for s in data.staff if s.role == "admin"),
        "senior_email": senior.email,
        "senior_id": senior.id,
        "inbox_zero_senior_emails": [s.email for s in data.staff if s.id in inbox_zero],
        "basic_email": basic.email,
        "basic_id": basic.id,
        "basic_thread_id": basic_families[0].id if basic_families else None,
        "long_thread_id": longest.id,
        "long_thread_messages": len(longest.message_ids),
        "typical_thread_id": typical.id,
        "typical_thread_messages": len(typical.message_ids),
        "search_term": normalise_words(pet)[0][:3],
        "families": len(data.families),
        "messages": len(data.message_keys),
        "staff": {"admin": ADMINS, "senior": SENIORS, "basic": BASICS},
    }


def seed(url: str, families: int, messages: int, random_seed: int, force: bool) -> dict[str, Any]:
    began = time.perf_counter()

    def step(name: str) -> None:
        print(f"  {time.perf_counter() - began:6.1f}s  {name}", flush=True)

    reset_schema(url, force)
    step("schema dropped and migrated")
    rng = random.Random(random_seed)
    now = datetime.now(UTC)
    data = generate(rng, families, messages, now)
    seniors = [s.id for s in data.staff if s.role == "senior"]
    inbox_zero = set(seniors[-INBOX_ZERO_SENIORS:])
    password_hash = hash_password(PASSWORD)
    step(f"generated {families:,} families and the order of {messages:,} messages")
    business_id = 1
    with psycopg.connect(libpq_url(url)) as connection, connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET maintenance_work_mem = '256MB'")
        write_directory(cursor, data, rng, business_id, password_hash)
        step("directory copied (staff, families, contacts, pets, search terms, threads)")
        write_messages(cursor, data)
        step("messages copied")
        write_activity(cursor, data, rng, inbox_zero)
        step("read/notified cursors and appointments copied")
        finish(cursor)
        check_consistency(cursor)
        connection.commit()
        step("sequences moved, consistency checked, committed")
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE)")
    step("vacuum analyze")
    seconds = time.perf_counter() - began
    summary = _summary(data, business_id, inbox_zero, seconds, url)
    RESULTS_DIR.mkdir(exist_ok=True)
    SEED_FILE.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--database-url", help=f"default: ${URL_ENV} or {DEFAULT_DATABASE_URL}")
    parser.add_argument("--families", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20240611, help="random seed (same seed, same data)")
    parser.add_argument("--force", action="store_true", help="drop the database even if it holds other businesses")
    args = parser.parse_args(argv)
    url = database_url(args.database_url)
    print(f"seeding {url}")
    summary = seed(url, args.families, args.messages, args.seed, args.force)
    print(f"seeded {summary['families']:,} families, {summary['messages']:,} messages in {summary['seconds']}s")
    print(f"longest thread {summary['long_thread_id']} has {summary['long_thread_messages']:,} messages")
    print(f"wrote {SEED_FILE.relative_to(Path.cwd()) if SEED_FILE.is_relative_to(Path.cwd()) else SEED_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
