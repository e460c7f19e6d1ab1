"""Today's appointments and a client's profile: the basic staff path to a family's thread.

Basic staff see only families they are scheduled with today (business time zone); the
profile of any other family answers 403 and is never linked.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.auth import current_staff, requires
from portal.runtime import db, now
from portal.scope import family_for
from threads.models import Appointment, Family, Thread
from threads.reading import unread_thread_ids
from threads.schedule import appointments_for_family, appointments_for_staff, business_today

bp = Blueprint("schedule", __name__)


@bp.get("/today")
@requires()
def today() -> str:
    staff = current_staff()
    day = business_today(staff.business, now())
    appointments = appointments_for_staff(db(), staff, day)
    family_ids = sorted({a.family_id for a in appointments})
    families = {
        f.id: f
        for f in db().scalars(
            select(Family).options(selectinload(Family.pets), selectinload(Family.thread)).where(Family.id.in_(family_ids))
        )
    }
    thread_ids = [f.thread.id for f in families.values() if f.thread is not None]
    unread = unread_thread_ids(db(), staff, thread_ids)
    return render_template(
        "today.html",
        day=day,
        appointments=appointments,
        families=families,
        unread_families={f.id for f in families.values() if f.thread is not None and f.thread.id in unread},
    )


@bp.get("/families/<int:family_id>")
@requires()
def profile(family_id: int) -> str:
    staff = current_staff()
    family = family_for(staff, family_id)
    day = business_today(staff.business, now())
    appointments: list[Appointment] = appointments_for_family(db(), family, day)
    thread = db().scalar(select(Thread).where(Thread.family_id == family.id))
    return render_template("family.html", family=family, appointments=appointments, day=day, thread=thread)
