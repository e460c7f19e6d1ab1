"""The Staff pages (admins): invite people, change roles, deactivate, and end sessions.

An invitation creates the staff member without a password and emails them (through the
outbox) a single-use link valid 7 days; resending replaces the link. A person's page lists
the browsers signed in as them and ends any or all of them. An admin cannot demote or
deactivate themselves (the business would risk having no admin). Another business's staff
answer 404 like ids that do not exist.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from outbound.accounts import queue_invitation, send_soon
from portal.audit import note
from portal.auth import current_staff, requires
from portal.runtime import db, now, reads_only, settings
from threads.accounts import (
    StaffProblems,
    change_role,
    end_all_sessions,
    end_session,
    invite_staff,
    issue_token,
    open_sessions,
    set_active,
)
from threads.models import ROLES
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
@reads_only
def index() -> str:
    return _list_page()


def _list_page(form: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> str:
    admin = current_staff()
    # Each person with their open sessions counted, in one statement (the staff_id, ended_at index).
    open_count = (
        select(func.count())
        .where(StaffSession.staff_id == Staff.id, StaffSession.ended_at.is_(None), StaffSession.expires_at > now())
        .scalar_subquery()
    )
    rows = db().execute(select(Staff, open_count).where(Staff.business_id == admin.business_id).order_by(Staff.active.desc(), Staff.name)).all()
    people = [person for person, _count in rows]
    counts = {person.id: count for person, count in rows if count}
    return render_template(
        "staff_list.html", people=people, session_counts=counts, roles=ROLES, form=form or {"role": "basic"}, errors=errors or {}
    )


@bp.post("/staff/invite")
@requires("admin")
def invite() -> Any:
    admin = current_staff()
    form = {key: request.form.get(key, "")[:400] for key in ("name", "email", "role")}
    try:
        person = invite_staff(db(), admin.business_id, name=form["name"], email=form["email"], role=form["role"])
    except StaffProblems as error:
        db().rollback()
        return _list_page(form, error.problems), 400
    _send_invitation(person)
    flash(f"Invitation sent to {person.name} <{person.email}>.")
    return redirect(url_for("staff.index"))


def _send_invitation(person: Staff) -> None:
    """Issue a fresh link (retiring the last one), queue its email, commit, push delivery."""
    moment = now()
    token_row, token = issue_token(db(), person, "invite", moment)
    outbox_id = queue_invitation(db(), settings(), token_row, token, moment, invited_by=current_staff().name)
    note(
        "staff.invite", f"Invited {person.name} <{person.email}> as {person.role}", staff_id=person.id,
        after={"name": person.name, "email": person.email, "role": person.role, "link expires": token_row.expires_at},
    )
    db().commit()
    send_soon([outbox_id])
    logger.info("staff %s invited staff %s", current_staff().id, person.id)


@bp.post("/staff/<int:staff_id>/resend")
@requires("admin")
def resend(staff_id: int) -> Response:
    person = staff_of_my_business(staff_id)
    if person.password_hash or not person.active:
        flash(f"{person.name} has already set a password." if person.active else f"{person.name} is deactivated.", "error")
        return redirect(url_for("staff.show", staff_id=person.id))
    _send_invitation(person)
    flash(f"A new invitation went to {person.email}; the earlier link no longer works.")
    return redirect(url_for("staff.show", staff_id=person.id))


@bp.post("/staff/<int:staff_id>/role")
@requires("admin")
def set_role(staff_id: int) -> Any:
    person = staff_of_my_business(staff_id)
    if person.id == current_staff().id:
        flash("You cannot change your own role; ask another admin.", "error")
        return redirect(url_for("staff.show", staff_id=person.id))
    before = person.role
    try:
        change_role(person, request.form.get("role", ""))
    except StaffProblems:
        db().rollback()
        flash("Choose basic, senior or admin.", "error")
        return redirect(url_for("staff.show", staff_id=person.id))
    note("staff.role", f"Changed {person.name}'s role", staff_id=person.id, before={"role": before}, after={"role": person.role})
    db().commit()
    flash(f"{person.name} is now {person.role} staff.")
    return redirect(url_for("staff.show", staff_id=person.id))


@bp.post("/staff/<int:staff_id>/deactivate")
@requires("admin")
def deactivate(staff_id: int) -> Response:
    return _set_active(staff_id, False)


@bp.post("/staff/<int:staff_id>/activate")
@requires("admin")
def activate(staff_id: int) -> Response:
    return _set_active(staff_id, True)


def _set_active(staff_id: int, active: bool) -> Response:
    person = staff_of_my_business(staff_id)
    if person.id == current_staff().id:
        flash("You cannot deactivate yourself; ask another admin.", "error")
        return redirect(url_for("staff.show", staff_id=person.id))
    before = person.active
    set_active(db(), person, active, now())
    note(
        "staff.activate" if active else "staff.deactivate", f"{'Reactivated' if active else 'Deactivated'} {person.name}",
        staff_id=person.id, before={"active": before}, after={"active": active},
    )
    db().commit()
    logger.info("staff %s %s staff %s", current_staff().id, "activated" if active else "deactivated", person.id)
    flash(f"{person.name} can sign in again." if active else f"{person.name} is deactivated and signed out everywhere.")
    return redirect(url_for("staff.show", staff_id=person.id))


@bp.get("/staff/<int:staff_id>")
@requires("admin")
def show(staff_id: int) -> str:
    person = staff_of_my_business(staff_id)
    sessions = open_sessions(db(), person.id, now())
    return render_template("staff_person.html", person=person, sessions=sessions, roles=ROLES, is_me=person.id == current_staff().id)


@bp.post("/staff/<int:staff_id>/sessions/<int:session_id>/end")
@requires("admin")
def end_one(staff_id: int, session_id: int) -> Response:
    person = staff_of_my_business(staff_id)
    row = db().scalar(select(StaffSession).where(StaffSession.id == session_id, StaffSession.staff_id == person.id))
    if row is None:
        raise UnknownStaff(f"no session {session_id} of staff {person.id}")
    end_session(db(), row, now())
    note("staff.session.end", f"Ended a session of {person.name}", staff_id=person.id, before={"session": row.id, "browser": row.user_agent})
    db().commit()
    logger.info("staff %s ended session %s of staff %s", current_staff().id, row.id, person.id)
    flash(f"Signed {person.name} out of that browser.")
    return redirect(url_for("staff.show", staff_id=person.id))


@bp.post("/staff/<int:staff_id>/sessions/end")
@requires("admin")
def end_all(staff_id: int) -> Response:
    person = staff_of_my_business(staff_id)
    ended = end_all_sessions(db(), person.id, now())
    note("staff.session.end_all", f"Signed {person.name} out everywhere ({ended} session(s))", staff_id=person.id)
    db().commit()
    logger.info("staff %s ended %d session(s) of staff %s", current_staff().id, ended, person.id)
    flash(f"Signed {person.name} out everywhere ({ended} session{'s' if ended != 1 else ''}).")
    return redirect(url_for("staff.show", staff_id=person.id))
