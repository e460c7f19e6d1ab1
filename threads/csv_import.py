"""Moving in from a spreadsheet: families (contacts, pets) and appointments as CSV.

Each CSV becomes the same entries `pawpost import` reads and is checked by the same rules
(`validate_directory`, `validate_appointment_fields`); every problem is reported with its CSV
row. Applying writes through the import's own upserts, all or nothing: the caller commits
only when there is no problem (and never for a preview). Functions never commit.

Families: one row per contact or pet; rows with the same `family_id` make one family.
Appointments: times are local to the business (`YYYY-MM-DD HH:MM`); staff by email,
separated by `;`; families by the `family_id` of the families import.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from threads.directory import normalise_email
from threads.importing import (
    ImportReport,
    upsert_appointments,
    upsert_families,
    validate_appointment_fields,
    validate_directory,
)
from threads.models import Appointment, Business, Family, Staff

FAMILY_COLUMNS = ("family_id", "family_name", "contact_name", "contact_email", "contact_primary", "pet_name", "pet_species", "pet_breed")
APPOINTMENT_COLUMNS = ("appointment_id", "family_id", "staff_emails", "service", "start", "end", "status")
FAMILY_EXAMPLE = ("johnson", "Johnson family", "Emma Johnson", "emma@example.com", "yes", "Bella", "dog", "Labrador")
APPOINTMENT_EXAMPLE = ("walk-0001", "johnson", "jordan@example.com", "walk", "2026-12-01 09:00", "2026-12-01 10:00", "scheduled")
MAX_ROWS = 50_000
_PATH = re.compile(r"^(?:families|appointments)\[(\d+)\](?:\.(contacts|pets)\[(\d+)\])?(?:\.(\w+))?")


@dataclass(frozen=True)
class RowProblem:
    row: int  # 1-based line in the file, the header being line 1
    field: str
    message: str


@dataclass
class CsvReport:
    kind: str
    rows: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)


def template(kind: str) -> str:
    """The header and one example row, to download and fill in."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FAMILY_COLUMNS if kind == "families" else APPOINTMENT_COLUMNS)
    writer.writerow(FAMILY_EXAMPLE if kind == "families" else APPOINTMENT_EXAMPLE)
    return out.getvalue()


def _rows(text: str, columns: tuple[str, ...], report: CsvReport) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        report.problems.append(RowProblem(1, ",".join(missing), "missing column(s): " + ", ".join(missing)))
        return []
    rows = []
    for number, row in enumerate(reader, start=2):
        if number - 1 > MAX_ROWS:
            report.problems.append(RowProblem(number, "", f"more than {MAX_ROWS} rows: split the file"))
            break
        values = {key: (value or "").strip() for key, value in row.items() if key in columns}
        if any(values.values()):
            rows.append((number, values))
    report.rows = len(rows)
    return rows


def import_csv(session: Session, business: Business, kind: str, text: str, *, mail_domain: str, apply: bool) -> CsvReport:
    """Check every row; with `apply` and no problem, write them. The caller commits or rolls back."""
    report = CsvReport(kind)
    if kind == "families":
        _families(session, business, _rows(text, FAMILY_COLUMNS, report), report, mail_domain, apply)
    else:
        _appointments(session, business, _rows(text, APPOINTMENT_COLUMNS, report), report, apply)
    report.problems.sort(key=lambda p: p.row)
    return report


def _families(session: Session, business: Business, rows: list[tuple[int, dict[str, str]]], report: CsvReport, mail_domain: str, apply: bool) -> None:
    families: dict[str, dict[str, Any]] = {}
    positions: dict[str, int] = {}
    where: dict[tuple[int, str | None, int | None], int] = {}  # (family, part, index) → row
    for number, row in rows:
        ident = row["family_id"]
        if not ident:
            report.problems.append(RowProblem(number, "family_id", "is required"))
            continue
        if ident not in families:
            positions[ident] = len(families)
            families[ident] = {"id": ident, "name": row["family_name"] or None, "contacts": [], "pets": []}
            where[(positions[ident], None, None)] = number
        entry = families[ident]
        position = positions[ident]
        if row["family_name"] and entry["name"] and row["family_name"] != entry["name"]:
            report.problems.append(RowProblem(number, "family_name", f"differs from an earlier row of {ident!r}"))
        if row["contact_name"] or row["contact_email"]:
            contact: dict[str, Any] = {"name": row["contact_name"] or None, "email": row["contact_email"]}
            if row["contact_primary"]:
                flag = row["contact_primary"].lower()
                contact["primary"] = True if flag in ("yes", "y", "true", "1") else False if flag in ("no", "n", "false", "0") else flag
            where[(position, "contacts", len(entry["contacts"]))] = number
            entry["contacts"].append(contact)
        if row["pet_name"] or row["pet_species"] or row["pet_breed"]:
            pet = {"name": row["pet_name"] or None, **{k: row[f"pet_{k}"] for k in ("species", "breed") if row[f"pet_{k}"]}}
            where[(position, "pets", len(entry["pets"]))] = number
            entry["pets"].append(pet)
    data = {
        "business": {"id": business.slug, "name": business.name, "timezone": business.timezone},
        "families": [{k: v for k, v in f.items() if v is not None} for f in families.values()],
    }
    for problem in validate_directory(data):
        path, _, message = problem.partition(": ")
        found = _PATH.match(path)
        if found is None:
            report.problems.append(RowProblem(1, path, message))
            continue
        family_index, part, index, name = found.groups()
        first_row = where.get((int(family_index), None, None), 1)
        if part:
            row = where.get((int(family_index), part, int(index)), first_row)
            column = ("contact_" if part == "contacts" else "pet_") + (name or "name")
        else:
            row = first_row
            column = {"id": "family_id", "name": "family_name", "contacts": "contact_name", "pets": "pet_name"}.get(name or "id", name or "")
        report.problems.append(RowProblem(row, column, message))
    existing = set(session.scalars(select(Family.external_id).where(Family.business_id == business.id, Family.external_id.in_(list(families)))))
    report.created["families"] = len(set(families) - existing)
    report.updated["families"] = len(existing)
    if apply and not report.problems:
        imported = ImportReport()
        upsert_families(session, business, data["families"], mail_domain, imported)
        report.created, report.updated = imported.created, imported.updated


def _appointments(session: Session, business: Business, rows: list[tuple[int, dict[str, str]]], report: CsvReport, apply: bool) -> None:
    zone = ZoneInfo(business.timezone)
    families = {f.external_id: f for f in session.scalars(select(Family).where(Family.business_id == business.id))}
    staff = {s.email: s for s in session.scalars(select(Staff).where(Staff.business_id == business.id, Staff.active))}
    family_ids, staff_emails = set(families), set(staff)
    entries: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for number, row in rows:
        emails = [normalise_email(e) for e in row["staff_emails"].split(";") if e.strip()]
        entry = {
            "id": row["appointment_id"],
            "family": row["family_id"],
            "staff": emails,
            "service": row["service"] or "visit",
            "start": _local_iso(row["start"], zone),
            "end": _local_iso(row["end"], zone),
            "status": row["status"] or "scheduled",
        }
        problems = validate_appointment_fields(entry, family_ids, staff_emails)
        if not entry["id"]:
            problems["appointment_id"] = "is required"
        elif entry["id"] in seen:
            problems["appointment_id"] = f"{entry['id']!r} is also on row {seen[entry['id']]}"
        seen.setdefault(entry["id"], number)
        for name, text in ("start", row["start"]), ("end", row["end"]):
            if entry[name] is None:
                problems[name] = f"{text!r} is not a date and time like 2026-12-01 09:00"
        columns = {"family": "family_id", "staff": "staff_emails"}
        report.problems += [
            RowProblem(number, columns.get(k, k), v.replace("is not a staff id", "is not the email of an active staff member"))
            for k, v in problems.items()
        ]
        entries.append((number, entry))
    ids = [e["id"] for _, e in entries if e["id"]]
    existing = set(session.scalars(select(Appointment.external_id).where(Appointment.business_id == business.id, Appointment.external_id.in_(ids)))) if ids else set()
    report.created["appointments"] = len(set(ids) - existing)
    report.updated["appointments"] = len(existing)
    if apply and not report.problems:
        imported = ImportReport()
        upsert_appointments(session, business, [entry for _, entry in entries], families, staff, imported)
        session.flush()
        report.created, report.updated = imported.created, imported.updated


def _local_iso(text: str, zone: ZoneInfo) -> str | None:
    """`2026-12-01 09:00` in the business's zone as ISO 8601 with its offset; an offset given wins."""
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).isoformat()
