"""The Schedule pages: day and week, by staff and by family, in the business's zone; admins
add, edit, reassign and cancel appointments, and access follows at once."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import make_appointment, make_family, make_staff
from tests.portal.conftest import World, csrf_token, sign_in_as
from threads.models import Appointment, Family, Staff
from threads.types import utcnow

ZONE = ZoneInfo("America/New_York")


def local_today() -> datetime:
    return utcnow().astimezone(ZONE)


def form(family_id: int, staff_ids: list[int], start: datetime, end: datetime, service: str = "walk") -> dict[str, object]:
    return {
        "family": str(family_id),
        "staff": [str(i) for i in staff_ids],
        "service": service,
        "start_date": start.date().isoformat(),
        "start_time": start.strftime("%H:%M"),
        "end_date": end.date().isoformat(),
        "end_time": end.strftime("%H:%M"),
    }


def post(client: FlaskClient, path: str, data: dict[str, object]):  # type: ignore[no-untyped-def]
    return client.post(path, data={"csrf_token": csrf_token(client, "/schedule"), **data})


def test_an_appointment_added_reassigned_and_cancelled_moves_a_walkers_access_at_once(
    app: Flask, world: World, db: Session
) -> None:
    db.rollback()
    admin, walker = app.test_client(), app.test_client()
    sign_in_as(app, admin, world.admin)
    sign_in_as(app, walker, world.basic)
    other = f"/families/{world.other.id}"
    assert walker.get(other).status_code == 403
    now = local_today()
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    if start.date() != now.date():  # just after midnight: keep the whole visit today
        start = now.replace(hour=0, minute=1)
    created = post(admin, "/schedule/appointments", form(world.other.id, [world.basic.id], start, end))
    assert created.status_code == 302
    assert walker.get(other).status_code == 200
    assert "Garcia family" in walker.get("/today").get_data(as_text=True)
    appointment_id = db.scalar(select(Appointment.id).where(Appointment.family_id == world.other.id).order_by(Appointment.id.desc()))
    db.rollback()

    reassigned = post(admin, f"/schedule/appointments/{appointment_id}", form(world.other.id, [world.senior2.id], start, end))
    assert reassigned.status_code == 302
    assert walker.get(other).status_code == 403
    post(admin, f"/schedule/appointments/{appointment_id}", form(world.other.id, [world.basic.id], start, end))
    assert walker.get(other).status_code == 200
    assert post(admin, f"/schedule/appointments/{appointment_id}/cancel", {}).status_code == 302
    assert walker.get(other).status_code == 403


def test_the_form_shows_each_problem_next_to_its_field(app: Flask, world: World, db: Session) -> None:
    db.rollback()
    admin = app.test_client()
    sign_in_as(app, admin, world.admin)
    now = local_today()
    bad = post(admin, "/schedule/appointments", form(world.foreign_family.id, [], now, now - timedelta(hours=1)))
    page = bad.get_data(as_text=True)
    assert bad.status_code == 400
    for field in ("family", "staff", "end"):
        assert f'id="{field}-error"' in page, field
    assert "must be after start" in page and "is not a family id of this business" in page
    assert db.scalar(select(Appointment.id).where(Appointment.family_id == world.foreign_family.id, Appointment.staff.any(Staff.id == world.admin.id))) is None


def test_week_and_day_views_by_staff_and_by_family_include_multi_day_stays(app: Flask, world: World, db: Session) -> None:
    monday = local_today().date() - timedelta(days=local_today().weekday())
    stay_start = datetime.combine(monday, datetime.min.time(), tzinfo=ZONE).replace(hour=17)
    family = db.get(Family, world.other.id)
    staff = db.get(Staff, world.senior2.id)
    assert family is not None and staff is not None
    make_appointment(db, family, [staff], start=stay_start, hours=41, service="boarding")  # Mon 17:00 → Wed 10:00
    db.commit()
    senior = app.test_client()
    sign_in_as(app, senior, world.senior)
    week = senior.get(f"/schedule?date={monday.isoformat()}").get_data(as_text=True)
    sky_row = week.split("Sky Senior", 1)[1].split("</tr>", 1)[0]
    assert sky_row.count("boarding") == 3  # Monday, Tuesday and Wednesday
    by_family = senior.get(f"/schedule?date={monday.isoformat()}&by=family").get_data(as_text=True)
    assert "Garcia family" in by_family and "Sky Senior" in by_family
    wednesday = senior.get(f"/schedule?view=day&date={(monday + timedelta(days=2)).isoformat()}").get_data(as_text=True)
    assert "boarding" in wednesday and "10:00 AM" in wednesday
    thursday = senior.get(f"/schedule?view=day&date={(monday + timedelta(days=3)).isoformat()}").get_data(as_text=True)
    assert "boarding" not in thursday


def test_rows_past_the_first_page_show_their_own_appointments(app: Flask, world: World, db: Session) -> None:
    """A page reads only its rows' appointments: the 16th family and the 16th staff member
    (by name) are on page 2 with theirs, and page 1 holds none of their visits."""
    monday = local_today().date() - timedelta(days=local_today().weekday())
    tuesday_noon = datetime.combine(monday + timedelta(days=1), datetime.min.time(), tzinfo=ZONE).replace(hour=12)
    business = world.business
    walkers = [make_staff(db, business, role="basic", name=f"Walker {n:02d}") for n in range(16)]  # after "Ada", "Bo", "Sam", "Sky"
    for n in range(16):
        family = make_family(db, business, name=f"Zed {n:02d} family", contacts=(f"Zoe Zed{n}",), pets=(f"Pup{n}",))
        make_appointment(db, family, [walkers[n]], start=tuesday_noon, service=f"visit-{n:02d}")
    db.commit()
    senior = app.test_client()
    sign_in_as(app, senior, world.senior)
    by_family = [senior.get(f"/schedule?date={monday.isoformat()}&by=family&page={p}").get_data(as_text=True) for p in (0, 1)]
    # Garcia and Johnson first, then "Zed 00" … "Zed 12" fill page 1; "Zed 13" … "Zed 15" are on page 2.
    assert "Zed 12 family" in by_family[0] and "Zed 13 family" not in by_family[0] and "visit-13" not in by_family[0]
    assert "Zed 15 family" in by_family[1] and "visit-15" in by_family[1] and "Walker 15" in by_family[1]
    assert "Page 2 of 2" in by_family[1]
    beyond = senior.get(f"/schedule?date={monday.isoformat()}&by=family&page=4").get_data(as_text=True)
    assert "No appointments." in beyond and "Page 5 of 2" in beyond and "Previous families" in beyond
    by_staff = [senior.get(f"/schedule?date={monday.isoformat()}&page={p}").get_data(as_text=True) for p in (0, 1)]
    # Staff by name: Ada, Bo, Sam, Sky, then Walker 00 … Walker 10 on page 1; Walker 11 … 15 on page 2.
    assert "Walker 10" in by_staff[0] and "visit-10" in by_staff[0] and "visit-11" not in by_staff[0]
    walker_15 = by_staff[1].split("Walker 15", 1)[1].split("</tr>", 1)[0]
    assert "visit-15" in walker_15 and "Zed 15 family" in walker_15


def test_an_appointment_with_two_walkers_shows_in_both_rows_and_names_both(app: Flask, world: World, db: Session) -> None:
    """Each appointment is read with its walkers in one statement: two walkers (one of them
    since deactivated, so no row of their own but still named), one appointment."""
    monday = local_today().date() - timedelta(days=local_today().weekday())
    tuesday_nine = datetime.combine(monday + timedelta(days=1), datetime.min.time(), tzinfo=ZONE).replace(hour=9)
    family = db.get(Family, world.other.id)
    sky = db.get(Staff, world.senior2.id)
    assert family is not None and sky is not None
    gone = make_staff(db, world.business, role="basic", name="Gil Gone", active=False)
    make_appointment(db, family, [sky, gone], start=tuesday_nine, service="pack walk")
    db.commit()
    senior = app.test_client()
    sign_in_as(app, senior, world.senior)
    by_staff = senior.get(f"/schedule?date={monday.isoformat()}").get_data(as_text=True)
    assert "Gil Gone" not in by_staff
    sky_row = by_staff.split("Sky Senior", 1)[1].split("</tr>", 1)[0]
    assert sky_row.count("pack walk") == 1 and "9:00 AM – 10:00 AM" in sky_row
    by_family = senior.get(f"/schedule?date={monday.isoformat()}&by=family").get_data(as_text=True)
    garcia_row = by_family.split("Garcia family", 1)[1].split("</tr>", 1)[0]
    assert "pack walk · Sky Senior, Gil Gone" in garcia_row  # by staff id: Sky joined first
