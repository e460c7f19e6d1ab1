"""The Staff pages (admins): who works here, and each person's signed-in sessions.

A person's page lists the browsers signed in as them (when, from where, which browser) and
ends any or all of them; another business's staff answer 404 like ids that do not exist.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from portal.auth import current_staff, requires
from portal.runtime import db, now
from threads.accounts import end_all_sessions, end_session, open_sessions
from threads.errors import UnknownStaff
from threads.models import Staff, StaffSession

logger = logging.getLogger(__name__)

bp = Blueprint("staff", __name__)


def staff_of_my_business(staff_id: int) -> Staff:
    """A colleague of the signed-in admin; any other id is unknown (404)."""
    person = db().scalar(select(Staff).where(Staff.id == staff_id, Staff.business_id == current_staff().business_id))
    if person is None:
        raise UnknownStaff(f"no staff {staff_id} in business {current_staff().business_id}")
    return person


@bp.get("/staff")
@requires("admin")
def index() -> str:
    admin = current_staff()
    people = db().scalars(select(Staff).where(Staff.business_id == admin.business_id).order_by(Staff.active.desc(), Staff.name)).all()
    counts = dict(
        db().execute(
            select(StaffSession.staff_id, func.count())
            .where(StaffSession.business_id == admin.business_id, StaffSession.ended_at.is_(None), StaffSession.expires_at > now())
            .group_by(StaffSession.staff_id)
        ).all()
    )
    return render_template("staff_list.html", people=people, session_counts=counts)


@bp.get("/staff/<int:staff_id>")
@requires("admin")
def show(staff_id: int) -> str:
    person = staff_of_my_business(staff_id)
    return render_template("staff_person.html", person=person, sessions=open_sessions(db(), person.id, now()), **_extra(person))


def _extra(person: Staff) -> dict[str, Any]:
    """What later parts of the page add (kept apart so the view stays short)."""
    return {}


@bp.post("/staff/<int:staff_id>/sessions/<int:session_id>/end")
@requires("admin")
def end_one(staff_id: int, session_id: int) -> Response:
    person = staff_of_my_business(staff_id)
    row = db().scalar(select(StaffSession).where(StaffSession.id == session_id, StaffSession.staff_id == person.id))
    if row is None:
        raise UnknownStaff(f"no session {session_id} of staff {person.id}")
    end_session(db(), row, now())
    db().commit()
    logger.info("staff %s ended session %s of staff %s", current_staff().id, row.id, person.id)
    flash(f"Signed {person.name} out of that browser.")
    return redirect(url_for("staff.show", staff_id=person.id))


@bp.post("/staff/<int:staff_id>/sessions/end")
@requires("admin")
def end_all(staff_id: int) -> Response:
    person = staff_of_my_business(staff_id)
    ended = end_all_sessions(db(), person.id, now())
    db().commit()
    logger.info("staff %s ended %d session(s) of staff %s", current_staff().id, ended, person.id)
    flash(f"Signed {person.name} out everywhere ({ended} session{'s' if ended != 1 else ''}).")
    return redirect(url_for("staff.show", staff_id=person.id))
