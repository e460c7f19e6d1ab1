"""Announcements: a senior writes once, previews who it reaches, and it is posted into each
family's own thread by the worker (resumable: see threads.announcements)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from portal.auth import current_staff, requires
from portal.runtime import db, now
from threads.announcements import AUDIENCES, Audience, create_announcement, pick_audience, progress
from threads.errors import FieldProblems, UnknownThread
from threads.models import Announcement, Family

logger = logging.getLogger(__name__)

bp = Blueprint("announcements", __name__)

MAX_PICKABLE = 500  # the hand-picked list shows this many families (by name)


def _form() -> dict[str, Any]:
    return {
        "body": request.form.get("body", ""),
        "audience": request.form.get("audience", "everyone"),
        "day": request.form.get("day", ""),
        "family_ids": [int(v) for v in request.form.getlist("family_ids") if v.isdigit()][:10_000],
    }


def _audience(form: dict[str, Any]) -> Audience:
    day = None
    if form["audience"] == "day":
        try:
            day = date.fromisoformat(form["day"])
        except ValueError:
            raise FieldProblems({"day": "Pick the day."}) from None
    return pick_audience(db(), current_staff(), form["audience"], day=day, family_ids=form["family_ids"])


def _page(form: dict[str, Any], problems: dict[str, str] | None = None, audience: Audience | None = None) -> str:
    staff = current_staff()
    families = db().execute(
        select(Family.id, Family.name).where(Family.business_id == staff.business_id).order_by(Family.name, Family.id).limit(MAX_PICKABLE)
    ).all()
    recent = db().scalars(
        select(Announcement).where(Announcement.business_id == staff.business_id).order_by(Announcement.id.desc()).limit(10)
    ).all()
    return render_template(
        "announcements.html", form=form, errors=problems or {}, audience=audience, families=families,
        recent=[(a, progress(db(), a.id)) for a in recent], audiences=AUDIENCES,
    )


@bp.get("/announcements")
@requires("senior")
def index() -> str:
    return _page({"body": "", "audience": "everyone", "day": now().date().isoformat(), "family_ids": []})


@bp.post("/announcements/preview")
@requires("senior")
def preview() -> Any:
    form = _form()
    try:
        audience = _audience(form)
        if not form["body"].strip():
            raise FieldProblems({"body": "Write the announcement."})
    except FieldProblems as error:
        return _page(form, error.problems), 400
    return _page(form, audience=audience)


@bp.post("/announcements")
@requires("senior")
def send() -> Any:
    form = _form()
    try:
        announcement = create_announcement(db(), current_staff(), form["body"], _audience(form), now())
    except FieldProblems as error:
        db().rollback()
        return _page(form, error.problems), 400
    db().commit()
    from outbound.tasks import post_announcement

    try:
        post_announcement(announcement.id)
    except Exception:  # the queue is down: the sweep restarts unfinished announcements
        logger.exception("could not enqueue announcement %s; the sweep will restart it", announcement.id)
    flash("Announcement on its way: it is posted into each family's thread.")
    return redirect(url_for("announcements.show", announcement_id=announcement.id))


@bp.get("/announcements/<int:announcement_id>")
@requires("senior")
def show(announcement_id: int) -> str:
    staff = current_staff()
    announcement = db().scalar(
        select(Announcement).where(Announcement.id == announcement_id, Announcement.business_id == staff.business_id)
    )
    if announcement is None:
        raise UnknownThread(f"no announcement {announcement_id}")
    done, total = progress(db(), announcement.id)
    return render_template("announcement.html", announcement=announcement, done=done, total=total)
