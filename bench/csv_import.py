"""Time a small business moving in from spreadsheets: 10,000 families (two contacts and a
pet each) and 13,000 appointments through the portal's CSV import (preview, then apply),
on SQLite and on PostgreSQL. The baseline, measured in the same run, is the same rows
inserted by plain SQLAlchemy Core `INSERT`s (no validation, no upserts): the ratio to it
is what compares across machines. The issue's bar: the whole import under 20 s.

    .venv/bin/python -m bench.csv_import [--families 10000] [--appointments 13000]
        [--database-url postgresql://postgres@127.0.0.1:5432/bench_csv]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta

from sqlalchemy import insert, select

from bench.database import prepare_database
from threads import migrate
from threads.csv_import import APPOINTMENT_COLUMNS, FAMILY_COLUMNS, import_csv
from threads.db import make_engine, make_session_factory
from threads.models import Business, Contact, ContactAddress, Family, Pet, Staff

DEFAULT_PG = os.environ.get("PAWPOST_BENCH_CSV_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_csv")
TARGET_SECONDS = 20.0


def families_csv(count: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FAMILY_COLUMNS)
    for n in range(count):
        ident = f"fam-{n:05d}"
        writer.writerow([ident, f"Family {n:05d}", f"Parent A{n}", f"a{n}@parents.example", "yes", f"Pet{n}", "dog", "Mixed"])
        writer.writerow([ident, "", f"Parent B{n}", f"b{n}@parents.example", "", "", "", ""])
    return out.getvalue()


def appointments_csv(count: int, families: int, staff: int, first: datetime) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(APPOINTMENT_COLUMNS)
    for n in range(count):
        start = first + timedelta(days=n % 14, hours=8 + n % 9)
        length = timedelta(hours=40) if n % 10 == 0 else timedelta(hours=1)  # every tenth a boarding stay
        writer.writerow([
            f"appt-{n:05d}", f"fam-{n % families:05d}", f"walker{n % staff}@team.example", "walk",
            start.strftime("%Y-%m-%d %H:%M"), (start + length).strftime("%Y-%m-%d %H:%M"), "",
        ])
    return out.getvalue()


def setup(url: str, staff: int) -> int:
    engine = make_engine(url)
    with make_session_factory(engine)() as session, session.begin():
        business = Business(slug="movers", name="Movers", timezone="America/New_York", sender_name="Movers")
        session.add(business)
        session.flush()
        session.add_all(Staff(business_id=business.id, name=f"Walker {n}", email=f"walker{n}@team.example", role="basic", active=True) for n in range(staff))
        business_id = business.id
    engine.dispose()
    return business_id


def run_import(url: str, business_id: int, kind: str, text: str, apply: bool) -> tuple[float, int]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            business = session.get(Business, business_id)
            assert business is not None
            started = time.perf_counter()
            report = import_csv(session, business, kind, text, mail_domain="reply.example", apply=apply)
            if apply and not report.problems:
                session.commit()
            else:
                session.rollback()
            elapsed = time.perf_counter() - started
            assert not report.problems, report.problems[:5]
            return elapsed, report.rows
    finally:
        engine.dispose()


def baseline(url: str, families: int) -> float:
    """Plain Core INSERTs of the same families, contacts, addresses and pets (no checks)."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            business = Business(slug="baseline", name="Baseline", timezone="UTC", sender_name="B")
            session.add(business)
            session.flush()
            started = time.perf_counter()
            family_ids = list(session.scalars(insert(Family).returning(Family.id, sort_by_parameter_order=True), [
                {"business_id": business.id, "external_id": f"b-{n}", "name": f"Family {n}"} for n in range(families)
            ]))
            contact_ids = list(session.scalars(insert(Contact).returning(Contact.id, sort_by_parameter_order=True), [
                {"family_id": f, "name": f"Parent {side}{n}", "is_primary": side == "A"} for n, f in enumerate(family_ids) for side in "AB"
            ]))
            session.execute(insert(ContactAddress), [{"contact_id": c, "email": f"x{c}@parents.example", "verified": True, "bouncing": False} for c in contact_ids])
            session.execute(insert(Pet), [{"family_id": f, "name": f"Pet{n}"} for n, f in enumerate(family_ids)])
            return time.perf_counter() - started
    finally:
        engine.dispose()


def bench(label: str, url: str, families: int, appointments: int) -> None:
    business_id = setup(url, staff=25)
    family_text = families_csv(families)
    appointment_text = appointments_csv(appointments, families, 25, datetime(2026, 12, 1))
    preview_f, rows_f = run_import(url, business_id, "families", family_text, apply=False)
    apply_f, _ = run_import(url, business_id, "families", family_text, apply=True)
    preview_a, rows_a = run_import(url, business_id, "appointments", appointment_text, apply=False)
    apply_a, _ = run_import(url, business_id, "appointments", appointment_text, apply=True)
    base = baseline(url, families)
    total = apply_f + apply_a
    print(
        f"{label:<10} families: {rows_f} rows preview {preview_f:5.2f} s, import {apply_f:5.2f} s | "
        f"appointments: {rows_a} rows preview {preview_a:5.2f} s, import {apply_a:5.2f} s | "
        f"import total {total:5.2f} s ({'under' if total < TARGET_SECONDS else 'OVER'} {TARGET_SECONDS:.0f} s) | "
        f"families import / bare INSERTs ({base:.2f} s): {apply_f / base:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", type=int, default=10_000)
    parser.add_argument("--appointments", type=int, default=13_000)
    parser.add_argument("--database-url", default=DEFAULT_PG)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/bench.sqlite3"
        migrate.upgrade(url)
        bench("sqlite", url, args.families, args.appointments)
    if not args.sqlite_only:
        prepare_database(args.database_url)
        bench("postgresql", args.database_url, args.families, args.appointments)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
