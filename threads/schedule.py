"""Rule 1, "scheduled today": an appointment overlaps day D in the business's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, select
from sqlalchemy.orm import Session

from threads.models import Appointment, Business, Family, Staff, appointment_staff


def business_today(business: Business, now: datetime) -> date:
    """The calendar day it is for the business at `now`."""
    return now.astimezone(ZoneInfo(business.timezone)).date()


def day_bounds(business: Business, day: date) -> tuple[datetime, datetime]:
    """The UTC instants where `day` starts and ends in the business's zone.

    Computed from local midnights, so a DST change day is 23 or 25 hours long.
    """
    zone = ZoneInfo(business.timezone)
    start = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return start, end


def _overlaps(business: Business, day: date) -> ColumnElement[bool]:
    start, end = day_bounds(business, day)
    return and_(
        Appointment.business_id == business.id,
        Appointment.status != "cancelled",
        Appointment.starts_at < end,
        Appointment.ends_at > start,
    )


def scheduled_staff(session: Session, family: Family, day: date) -> list[Staff]:
    """Active staff with an appointment for this family that overlaps `day`."""
    start, end = day_bounds(family.business, day)
    parameters = {"business_id": family.business_id, "family_id": family.id, "start": start, "end": end}
    return list(session.scalars(_scheduled_staff_statement(), parameters))


@cache
def _scheduled_staff_statement() -> Select[tuple[Staff]]:
    """Built once: every parent's message asks it (its staff alerts)."""
    return select(Staff).where(*_scheduled_conditions()).order_by(Staff.name, Staff.id)


def someone_scheduled() -> ColumnElement[bool]:
    """`scheduled_staff` is not empty, as a condition to add to a larger query (the email
    ingest asks it beside its other reads, in one round trip). Bind parameters:
    `business_id`, `family_id`, and the day's UTC bounds `start` and `end` (`day_bounds`)."""
    return exists().where(*_scheduled_conditions())


def _scheduled_conditions() -> tuple[ColumnElement[bool], ...]:
    return (
        Staff.active,
        Staff.business_id == bindparam("business_id"),
        exists()
        .where(appointment_staff.c.staff_id == Staff.id)
        .where(appointment_staff.c.appointment_id == Appointment.id)
        .where(Appointment.family_id == bindparam("family_id"))
        .where(
            Appointment.business_id == bindparam("business_id"),
            Appointment.status != "cancelled",
            Appointment.starts_at < bindparam("end"),
            Appointment.ends_at > bindparam("start"),
        ),
    )


def families_for_staff(session: Session, staff: Staff, day: date) -> list[Family]:
    """The families a staff member is scheduled with on `day`, by name.

    Read from the staff member's appointments (a few a day), not by testing every family of
    the business: SQLite ran the test once per family (10,000 probes at the benchmark's size)."""
    scheduled = (
        select(Appointment.family_id)
        .join(appointment_staff, appointment_staff.c.appointment_id == Appointment.id)
        .where(appointment_staff.c.staff_id == staff.id, _overlaps(staff.business, day))
    )
    query = (
        select(Family)
        .where(Family.business_id == staff.business_id, Family.id.in_(scheduled))
        .order_by(Family.name, Family.id)
    )
    return list(session.scalars(query))


def is_scheduled(session: Session, staff: Staff, family: Family, day: date) -> bool:
    if staff.business_id != family.business_id or not staff.active:
        return False
    query = select(
        exists()
        .where(appointment_staff.c.staff_id == staff.id)
        .where(appointment_staff.c.appointment_id == Appointment.id)
        .where(Appointment.family_id == family.id)
        .where(_overlaps(staff.business, day))
    )
    return bool(session.scalar(query))


def appointments_for_staff(session: Session, staff: Staff, day: date) -> list[Appointment]:
    """A staff member's non-cancelled appointments on `day`, earliest first (the Today page)."""
    query = (
        select(Appointment)
        .join(appointment_staff, appointment_staff.c.appointment_id == Appointment.id)
        .where(appointment_staff.c.staff_id == staff.id, _overlaps(staff.business, day))
        .order_by(Appointment.starts_at, Appointment.id)
    )
    return list(session.scalars(query))


def appointments_for_family(session: Session, family: Family, day: date) -> list[Appointment]:
    """A family's non-cancelled appointments on `day` (profile page, staff alerts)."""
    query = (
        select(Appointment)
        .where(Appointment.family_id == family.id, _overlaps(family.business, day))
        .order_by(Appointment.starts_at, Appointment.id)
    )
    return list(session.scalars(query))


def families_with_appointments(session: Session, business: Business, day: date) -> list[int]:
    """The ids of the families with an appointment (not cancelled) overlapping `day`."""
    query = (
        select(Appointment.family_id)
        .where(_overlaps(business, day))
        .distinct()
        .order_by(Appointment.family_id)
    )
    return list(session.scalars(query))
