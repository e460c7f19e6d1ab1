"""The Schedule pages: a day and a week of appointments, by staff member or by family, in the
business's time zone (senior staff and admins), and the appointment form (admins): add,
edit, reassign, cancel. A change holds at once for access and alerts (see threads.appointments).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from sqlalchemy import select
from werkzeug.wrappers import Response

from outbound.notify import webhooks_due
from portal.audit import note
from portal.auth import current_staff, requires
from portal.runtime import db, now, reads_only
from threads.appointments import (
    AppointmentForm,
    Slot,
    families_between,
    slots_between,
    cancel_appointment,
    create_appointment,
    update_appointment,
)
from threads.errors import FieldProblems, UnknownFamily
from threads.models import Appointment, Family, Staff
from threads.schedule import business_today, day_bounds
from threads.webhooks import appointment_changed

bp = Blueprint("calendar", __name__)

# Rows (staff members or families) per page of the Schedule: a week of a big business holds
# thousands of appointments.
ROWS_PER_PAGE = 15


def _day(value: str | None) -> date:
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        return business_today(current_staff().business, now())


@bp.get("/schedule")
@requires("senior")
@reads_only
def week() -> str:
    business = current_staff().business
    view = "day" if request.args.get("view") == "day" else "week"
    by = "family" if request.args.get("by") == "family" else "staff"
    anchor = _day(request.args.get("date"))
    first = anchor if view == "day" else anchor - timedelta(days=anchor.weekday())
    days = [first + timedelta(days=n) for n in range(1 if view == "day" else 7)]
    team = db().execute(select(Staff.id, Staff.name, Staff.active).where(Staff.business_id == business.id).order_by(Staff.name, Staff.id)).all()
    names = {i: name for i, name, _active in team}
    # The page's rows first, then only their appointments: a big business's week holds thousands.
    page = max(0, int(request.args.get("page", "0"))) if request.args.get("page", "0").isdigit() else 0
    if by == "staff":
        heads = [(i, name) for i, name, active in team if active]
        shown, total = heads[page * ROWS_PER_PAGE : (page + 1) * ROWS_PER_PAGE], len(heads)
    else:
        shown, total = families_between(db(), business, first, len(days), offset=page * ROWS_PER_PAGE, limit=ROWS_PER_PAGE)
    keys = [key for key, _ in shown]
    if not keys:
        slots = []
    elif by == "staff":
        slots = slots_between(db(), business, first, len(days), staff_ids=keys)
    else:
        slots = slots_between(db(), business, first, len(days), family_ids=keys)
    zone = ZoneInfo(business.timezone)
    # Each appointment into the cells of the days it covers, once: (row key, day index) → slots.
    cells: dict[tuple[int, int], list[Slot]] = {}
    bounds = [day_bounds(business, d) for d in days]
    for slot in slots:
        for index, (start, end) in enumerate(bounds):
            if slot.starts_at < end and slot.ends_at > start:
                for key in slot.staff_ids if by == "staff" else [slot.family_id]:
                    cells.setdefault((key, index), []).append(slot)
    # Each appointment's markup once (a busy week page shows hundreds; a template loop per
    # slot was most of the page's time), then joined into its cells.
    link = current_staff().role == "admin"
    labels: dict[tuple[int, ...] | tuple[datetime, datetime], str] = {}
    escaped = _Escaped()
    markup = {slot.id: _slot_markup(slot, _label(slot, zone, labels), by, names, link, escaped) for slot in slots}
    rows = [(name, [Markup("").join(markup[s.id] for s in cells.get((key, index), ())) for index in range(len(days))]) for key, name in shown]
    step = timedelta(days=1 if view == "day" else 7)
    return render_template(
        "schedule.html", view=view, by=by, days=days, rows=rows, today=business_today(business, now()),
        page=page, pages=max(1, -(-total // ROWS_PER_PAGE)),
        previous=(first - step).isoformat(), following=(first + step).isoformat(), anchor=anchor.isoformat(),
        zone=business.timezone,
    )


class _Escaped(dict[str, str]):
    """Each text escaped once per page: a week repeats the same labels, services and names."""

    def __missing__(self, text: str) -> str:
        value = self[text] = str(escape(text))
        return value


def _slot_markup(slot: Slot, label: str, by: str, names: dict[int, str], link: bool, escaped: _Escaped) -> Markup:
    """One appointment in a cell: when, the service, and the family (by staff) or the staff (by family)."""
    who = slot.family_name if by == "staff" else ", ".join(names.get(i, "") for i in slot.staff_ids)
    # f-strings over escape(): Markup.format's formatter cost more than the rest of the page.
    inner = f'<span class="when">{escaped[label]}</span><span>{escaped[slot.service]} · {escaped[who]}</span>'
    if link:
        inner = f'<a href="/schedule/appointments/{int(slot.id)}">{inner}</a>'
    return Markup(f'<div class="slot">{inner}</div>')


def _label(slot: Slot, zone: ZoneInfo, known: dict[tuple[int, ...] | tuple[datetime, datetime], str]) -> str:
    """"9:00 AM – 10:00 AM", or with the days for a stay (written once per page for each pair
    of local times: a week repeats them from day to day)."""
    first, last = slot.starts_at.astimezone(zone), slot.ends_at.astimezone(zone)
    key = (first.hour, first.minute, last.hour, last.minute) if first.date() == last.date() else (first, last)
    label = known.get(key)
    if label is None:
        label = known[key] = _label_of(first, last)
    return label


def _label_of(first: datetime, last: datetime) -> str:
    def clock(moment: datetime) -> str:
        return f"{moment.hour % 12 or 12}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"

    if first.date() == last.date():
        return f"{clock(first)} – {clock(last)}"
    return f"{first:%a} {first.day} {first:%b} {clock(first)} – {last:%a} {last.day} {last:%b} {clock(last)}"


def _form() -> AppointmentForm:
    return AppointmentForm(
        family_id=request.form.get("family", "")[:20],
        staff_ids=[value[:20] for value in request.form.getlist("staff")[:50]],
        service=request.form.get("service", "")[:200],
        start_date=request.form.get("start_date", "")[:20],
        start_time=request.form.get("start_time", "")[:20],
        end_date=request.form.get("end_date", "")[:20],
        end_time=request.form.get("end_time", "")[:20],
    )


def _editor(appointment: Appointment | None, form: AppointmentForm | None = None, errors: dict[str, str] | None = None) -> str:
    business = current_staff().business
    zone = ZoneInfo(business.timezone)
    if form is None and appointment is not None:
        start, end = appointment.starts_at.astimezone(zone), appointment.ends_at.astimezone(zone)
        form = AppointmentForm(
            str(appointment.family_id), [str(s.id) for s in appointment.staff], appointment.service,
            start.date().isoformat(), start.strftime("%H:%M"), end.date().isoformat(), end.strftime("%H:%M"),
        )
    if form is None:
        day = _day(request.args.get("date")).isoformat()
        form = AppointmentForm(request.args.get("family", ""), [], "visit", day, "09:00", day, "10:00")
    families = db().scalars(select(Family).where(Family.business_id == business.id).order_by(Family.name)).all()
    staff = db().scalars(select(Staff).where(Staff.business_id == business.id, Staff.active).order_by(Staff.name)).all()
    return render_template(
        "appointment.html", appointment=appointment, form=form, errors=errors or {}, families=families, staff_list=staff, zone=business.timezone
    )


def _snapshot(appointment: Appointment) -> dict[str, object]:
    zone = ZoneInfo(current_staff().business.timezone)
    return {
        "family": appointment.family.name if appointment.family else appointment.family_id,
        "staff": ", ".join(s.name for s in appointment.staff),
        "service": appointment.service,
        "starts": appointment.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        "ends": appointment.ends_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        "status": appointment.status,
    }


def _audit(action: str, summary: str, appointment: Appointment, before: dict[str, object] | None) -> None:
    db().flush()
    db().refresh(appointment)
    note(action, summary, family_id=appointment.family_id, before=before, after=_snapshot(appointment))
    appointment_changed(db(), appointment, action.removeprefix("appointment."), now())


def _appointment(appointment_id: int) -> Appointment:
    found = db().scalar(
        select(Appointment).where(Appointment.id == appointment_id, Appointment.business_id == current_staff().business_id)
    )
    if found is None:
        raise UnknownFamily(f"no appointment {appointment_id} in business {current_staff().business_id}")
    return found


def _back(appointment: Appointment) -> Response:
    day = appointment.starts_at.astimezone(ZoneInfo(current_staff().business.timezone)).date()
    return redirect(url_for("calendar.week", date=day.isoformat()))


@bp.get("/schedule/appointments/new")
@requires("admin")
def new() -> str:
    return _editor(None)


@bp.post("/schedule/appointments")
@requires("admin")
def create() -> Any:
    form = _form()
    try:
        appointment = create_appointment(db(), current_staff().business, form)
    except FieldProblems as error:
        db().rollback()
        return _editor(None, form, error.problems), 400
    _audit("appointment.create", "Added an appointment", appointment, None)
    db().commit()
    webhooks_due()
    flash("Appointment added.")
    return _back(appointment)


@bp.get("/schedule/appointments/<int:appointment_id>")
@requires("admin")
def edit(appointment_id: int) -> str:
    return _editor(_appointment(appointment_id))


@bp.post("/schedule/appointments/<int:appointment_id>")
@requires("admin")
def update(appointment_id: int) -> Any:
    appointment, form = _appointment(appointment_id), _form()
    before = _snapshot(appointment)
    try:
        update_appointment(db(), appointment, current_staff().business, form)
    except FieldProblems as error:
        db().rollback()
        return _editor(_appointment(appointment_id), form, error.problems), 400
    _audit("appointment.update", "Changed an appointment", appointment, before)
    db().commit()
    webhooks_due()
    flash("Appointment saved.")
    return _back(appointment)


@bp.post("/schedule/appointments/<int:appointment_id>/cancel")
@requires("admin")
def cancel(appointment_id: int) -> Response:
    appointment = _appointment(appointment_id)
    before = _snapshot(appointment)
    cancel_appointment(appointment)
    _audit("appointment.cancel", "Cancelled an appointment", appointment, before)
    db().commit()
    webhooks_due()
    flash("Appointment cancelled.")
    return _back(appointment)
