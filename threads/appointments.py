"""Keeping the schedule current from the portal: add, edit, reassign and cancel appointments.

Access (rule 5) and staff alerts (rule 4) are read from appointments whenever they are
needed, so a change here holds at once: a basic staff member's Today page and their email
rights follow the next request. Values are checked with the import's rules
(`validate_appointment_fields`); functions take a session and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from threads.errors import DirectoryError, FieldProblems
from threads.importing import ImportReport, upsert_appointments, validate_appointment_entry, validate_appointment_fields
from threads.models import Appointment, Business, Family, Staff, appointment_staff
from threads.schedule import day_bounds


@dataclass(frozen=True)
class AppointmentForm:
    """What the form sends: local dates and times in the business's zone."""

    family_id: str
    staff_ids: Sequence[str]
    service: str
    start_date: str
    start_time: str
    end_date: str
    end_time: str


def _local(business: Business, day: str, clock: str) -> datetime | None:
    try:
        return datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), tzinfo=ZoneInfo(business.timezone))
    except ValueError:
        return None


def _checked(session: Session, business: Business, form: AppointmentForm) -> tuple[Family, list[Staff], datetime, datetime, str]:
    start, end = _local(business, form.start_date, form.start_time), _local(business, form.end_date, form.end_time)
    family_ids = {str(i) for i in session.scalars(select(Family.id).where(Family.business_id == business.id))}
    staff_ids = {str(i) for i in session.scalars(select(Staff.id).where(Staff.business_id == business.id, Staff.active))}
    entry = {
        "family": form.family_id,
        "staff": list(form.staff_ids),
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "service": form.service.strip() or "visit",
    }
    problems = validate_appointment_fields(entry, family_ids, staff_ids)
    if start is None:
        problems["start"] = "enter a date and a time"
    if end is None:
        problems["end"] = "enter a date and a time"
    if problems:
        raise FieldProblems(problems)
    assert start is not None and end is not None
    family = session.get(Family, int(form.family_id))
    staff = list(session.scalars(select(Staff).where(Staff.id.in_([int(i) for i in form.staff_ids])).order_by(Staff.id)))
    assert family is not None
    return family, staff, start, end, entry["service"]  # type: ignore[return-value]


def create_appointment(session: Session, business: Business, form: AppointmentForm) -> Appointment:
    family, staff, start, end, service = _checked(session, business, form)
    appointment = Appointment(
        business_id=business.id, family_id=family.id, service=service, starts_at=start, ends_at=end, status="scheduled", staff=staff
    )
    session.add(appointment)
    session.flush()
    return appointment


def update_appointment(session: Session, appointment: Appointment, business: Business, form: AppointmentForm) -> None:
    """Change anything, reassigning included; a cancelled appointment edited is scheduled again."""
    family, staff, start, end, service = _checked(session, business, form)
    appointment.family_id, appointment.staff = family.id, staff
    appointment.starts_at, appointment.ends_at, appointment.service = start, end, service
    appointment.status = "scheduled"
    session.flush()


def cancel_appointment(appointment: Appointment) -> None:
    appointment.status = "cancelled"


def put_appointment(session: Session, business: Business, external_id: str, entry: dict[str, Any]) -> tuple[Appointment, bool]:
    """Create or replace an appointment by the business's id (the API's PUT), with the import's
    rules and writes: the family and staff are named by the business's ids, and every field not
    given takes the import's default (status scheduled, service "visit"). Raises
    `DirectoryError` (paths inside the entry); the appointment, and whether it is new."""
    family_ref, staff_refs = entry.get("family"), entry.get("staff")
    families = {
        f.external_id: f
        for f in session.scalars(select(Family).where(Family.business_id == business.id, Family.external_id == family_ref))
    } if _storable(family_ref) else {}
    wanted = [ref for ref in staff_refs if _storable(ref)] if isinstance(staff_refs, list) else []
    staff = {
        s.external_id: s
        for s in session.scalars(select(Staff).where(Staff.business_id == business.id, Staff.external_id.in_(wanted)))
        if s.external_id is not None
    }
    problems = validate_appointment_entry(entry, set(families), set(staff))
    if problems:
        raise DirectoryError(problems)
    report = ImportReport()
    upsert_appointments(session, business, [{**entry, "id": external_id}], families, staff, report)
    session.flush()
    appointment = session.scalar(select(Appointment).where(Appointment.business_id == business.id, Appointment.external_id == external_id))
    assert appointment is not None
    return appointment, "appointments" in report.created


def _storable(ref: object) -> bool:
    """An id some row could have (anything else is simply unknown, and is not asked for:
    PostgreSQL refuses NUL in a query)."""
    return isinstance(ref, str) and "\x00" not in ref and len(ref) <= 100


def delete_appointment(session: Session, appointment: Appointment) -> None:
    """Gone for good (a cancellation keeps the row and says so; this does not): whoever it
    scheduled is no longer scheduled by it, at once."""
    session.delete(appointment)
    session.flush()


@dataclass
class Slot:
    """One appointment as the Schedule page shows it (plain values: a week may hold thousands)."""

    id: int
    family_id: int
    family_name: str
    service: str
    starts_at: datetime
    ends_at: datetime
    staff_ids: list[int]


def _overlapping(business: Business, first: date, days: int) -> ColumnElement[bool]:
    """Non-cancelled appointments overlapping `days` days from `first` (business zone).

    `ends_at > start` first: with the (business_id, ends_at) index it reads only what ends
    after the first day (this week and later), never the business's whole history."""
    start, _ = day_bounds(business, first)
    _, end = day_bounds(business, first + timedelta(days=days - 1))
    return and_(
        Appointment.business_id == business.id,
        Appointment.ends_at > start,
        Appointment.starts_at < end,
        Appointment.status != "cancelled",
    )


def families_between(session: Session, business: Business, first: date, days: int, *, offset: int = 0, limit: int | None = None) -> tuple[list[tuple[int, str]], int]:
    """The families with an appointment in those days, by name (the rows of the by-family
    view): `limit` of them from `offset`, and how many there are in all (counted in the
    same statement; a busy week has thousands, a page shows 15)."""
    week = Family.id.in_(select(Appointment.family_id).where(_overlapping(business, first, days)))
    rows = session.execute(
        select(Family.id, Family.name, func.count().over()).where(week).order_by(Family.name, Family.id).offset(offset).limit(limit)
    ).all()
    if rows:
        return [(family_id, name) for family_id, name, _total in rows], rows[0][2]
    total = session.scalar(select(func.count()).select_from(Family).where(week)) if offset else 0
    return [], total or 0


def slots_between(
    session: Session, business: Business, first: date, days: int, *, staff_ids: Sequence[int] | None = None, family_ids: Sequence[int] | None = None
) -> list[Slot]:
    """Those days' appointments, earliest first, as plain rows in one statement (no ORM
    objects per row: one row per appointment and staff member); only those of `staff_ids` or
    `family_ids` when given (the rows one page of the Schedule shows: a week of a big
    business holds thousands). With `staff_ids`, a slot's `staff_ids` are those of them it
    assigns (the page places it in their rows), not its other walkers."""
    overlapping = _overlapping(business, first, days)
    columns = (Appointment.id, Appointment.family_id, Family.name, Appointment.service, Appointment.starts_at, Appointment.ends_at, appointment_staff.c.staff_id)
    if staff_ids is not None:
        query = (
            select(*columns)
            .select_from(appointment_staff)
            .join(Appointment, Appointment.id == appointment_staff.c.appointment_id)
            .where(appointment_staff.c.staff_id.in_(staff_ids))
        )
    else:
        query = select(*columns).outerjoin(appointment_staff, appointment_staff.c.appointment_id == Appointment.id)
        if family_ids is not None:
            overlapping = and_(overlapping, Appointment.family_id.in_(family_ids))
    rows = session.execute(
        query.join(Family, Family.id == Appointment.family_id)
        .where(overlapping)
        .order_by(Appointment.starts_at, Appointment.id, appointment_staff.c.staff_id)
    ).all()
    slots: dict[int, Slot] = {}
    for appointment_id, family_id, family_name, service, starts_at, ends_at, staff_id in rows:
        slot = slots.get(appointment_id)
        if slot is None:
            slot = slots[appointment_id] = Slot(appointment_id, family_id, family_name, service, starts_at, ends_at, staff_ids=[])
        if staff_id is not None:
            slot.staff_ids.append(staff_id)
    return list(slots.values())
