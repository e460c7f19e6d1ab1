"""Rules 1 and 5 on both databases: who is scheduled on a day, and who may use a thread."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tests.factories import make_appointment, make_business, make_family, make_staff, thread_of
from threads.access import can_access_thread
from threads.schedule import business_today, day_bounds, families_for_staff, is_scheduled, scheduled_staff

NY = ZoneInfo("America/New_York")


def test_scheduled_staff_follow_the_business_day(db: Session) -> None:
    business = make_business(db)
    walker, groomer, off = (make_staff(db, business, role="basic") for _ in range(3))
    family = make_family(db, business)
    # 23:30 on the 23rd in New York is already the 24th in UTC: it counts on the 23rd only.
    make_appointment(db, family, [walker], start=datetime(2026, 11, 23, 23, 0, tzinfo=NY), hours=0.5)
    make_appointment(db, family, [groomer], start=datetime(2026, 11, 24, 9, 0, tzinfo=NY))
    db.commit()
    assert scheduled_staff(db, family, date(2026, 11, 23)) == [walker]
    assert scheduled_staff(db, family, date(2026, 11, 24)) == [groomer]
    assert not is_scheduled(db, off, family, date(2026, 11, 24))


def test_a_boarding_stay_counts_on_every_day_it_touches(db: Session) -> None:
    business = make_business(db)
    sitter = make_staff(db, business, role="basic")
    family = make_family(db, business)
    make_appointment(db, family, [sitter], start=datetime(2026, 11, 23, 17, 0, tzinfo=NY), hours=41, service="boarding")
    db.commit()
    for day in (23, 24, 25):
        assert families_for_staff(db, sitter, date(2026, 11, day)) == [family]
    assert families_for_staff(db, sitter, date(2026, 11, 26)) == []
    assert families_for_staff(db, sitter, date(2026, 11, 22)) == []


def test_cancelled_appointments_never_schedule_anyone(db: Session) -> None:
    business = make_business(db)
    walker = make_staff(db, business, role="basic")
    family = make_family(db, business)
    make_appointment(db, family, [walker], start=datetime(2026, 11, 24, 9, 0, tzinfo=NY), status="cancelled")
    db.commit()
    assert scheduled_staff(db, family, date(2026, 11, 24)) == []


def test_inactive_staff_are_not_scheduled(db: Session) -> None:
    business = make_business(db)
    gone = make_staff(db, business, role="basic", active=False)
    family = make_family(db, business)
    make_appointment(db, family, [gone], start=datetime(2026, 11, 24, 9, 0, tzinfo=NY))
    db.commit()
    assert scheduled_staff(db, family, date(2026, 11, 24)) == []


def test_dst_change_day_is_25_hours_and_late_visits_count(db: Session) -> None:
    business = make_business(db)
    start, end = day_bounds(business, date(2026, 11, 1))
    assert (end - start).total_seconds() == 25 * 3600
    walker = make_staff(db, business, role="basic")
    family = make_family(db, business)
    make_appointment(db, family, [walker], start=datetime(2026, 11, 1, 23, 15, tzinfo=NY), hours=0.5)
    db.commit()
    assert scheduled_staff(db, family, date(2026, 11, 1)) == [walker]
    assert scheduled_staff(db, family, date(2026, 11, 2)) == []
    spring_start, spring_end = day_bounds(business, date(2026, 3, 8))
    assert (spring_end - spring_start).total_seconds() == 23 * 3600


def test_business_today_uses_its_zone() -> None:
    from threads.models import Business

    tokyo = Business(name="T", slug="t", timezone="Asia/Tokyo", sender_name="T")
    assert business_today(tokyo, datetime(2026, 11, 24, 16, 0, tzinfo=UTC)) == date(2026, 11, 25)


def test_access_matrix(db: Session) -> None:
    business, other = make_business(db), make_business(db, name="Other")
    admin = make_staff(db, business, role="admin")
    senior = make_staff(db, business, role="senior")
    basic_on, basic_off = make_staff(db, business, role="basic"), make_staff(db, business, role="basic")
    outsider = make_staff(db, other, role="admin")
    retired = make_staff(db, business, role="senior", active=False)
    family = make_family(db, business)
    make_appointment(db, family, [basic_on], start=datetime(2026, 11, 24, 9, 0, tzinfo=NY))
    db.commit()
    thread = thread_of(db, family)
    today = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    tomorrow = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    assert can_access_thread(db, admin, thread, today)
    assert can_access_thread(db, senior, thread, tomorrow)
    assert can_access_thread(db, basic_on, thread, today)
    assert not can_access_thread(db, basic_on, thread, tomorrow)
    assert not can_access_thread(db, basic_off, thread, today)
    assert not can_access_thread(db, outsider, thread, today)
    assert not can_access_thread(db, retired, thread, today)
