"""Announcements: a senior writes once, previews who it reaches, and it is posted into each
family's own thread by the worker (resumable: see threads.announcements)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from portal.auth import current_staff, requires
from portal.runtime import db, now
from threads.announcements import AUDIENCES, Audience, create_announcement, pick_audience, progress
from threads.directory import search_families
from threads.errors import FieldProblems, UnknownThread
from threads.models import Announcement, Family

logger = logging.getLogger(__name__)

bp = Blueprint("announcements", __name__)

# The hand-picked list shows this many families at a time; any other family is a search
# (by family, parent or pet name) or a page away, and the picked ones always stay listed.
PICK_PAGE = 100
MAX_PICK_QUERY = 100


def _form() -> dict[str, Any]:
    page = request.form.get("family_page", "")
    return {
        "body": request.form.get("body", ""),
        "audience": request.form.get("audience", "everyone"),
        "day": request.form.get("day", ""),
        "family_ids": [int(v) for v in request.form.getlist("family_ids") if v.isdigit()][:10_000],
        "family_q": request.form.get("family_q", "")[:MAX_PICK_QUERY].strip(),
        "family_page": min(int(page), 100_000) if page.isdigit() else 0,
    }


@dataclass(frozen=True)
class Picker:
    """The hand-picked list as the page shows it."""

    picked: list[tuple[int, str]]  # always listed (checked), so paging or searching keeps them
    others: list[tuple[int, str]]  # this page of the business's families, or the search's matches
    more: bool  # a next page exists
    nothing_found: bool = False  # a search matched no family at all


def _picker(form: dict[str, Any]) -> Picker:
    business_id = current_staff().business_id
    ids = form["family_ids"]
    picked = [tuple(row) for row in db().execute(
        select(Family.id, Family.name).where(Family.business_id == business_id, Family.id.in_(ids)).order_by(Family.name, Family.id)
    )] if ids else []
    chosen = {family_id for family_id, _ in picked}
    if form["family_q"]:
        matches = search_families(db(), business_id, form["family_q"], limit=PICK_PAGE + len(chosen))
        others = [(m.family_id, m.family_name) for m in matches if m.family_id not in chosen][:PICK_PAGE]
        return Picker(picked, others, more=False, nothing_found=not matches)
    rest = select(Family.id, Family.name).where(Family.business_id == business_id)
    if chosen:
        rest = rest.where(Family.id.not_in(chosen))
    rows = db().execute(rest.order_by(Family.name, Family.id).offset(form["family_page"] * PICK_PAGE).limit(PICK_PAGE + 1)).all()
    return Picker(picked, [tuple(row) for row in rows[:PICK_PAGE]], more=len(rows) > PICK_PAGE)


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
    recent = db().scalars(
        select(Announcement).where(Announcement.business_id == staff.business_id).order_by(Announcement.id.desc()).limit(10)
    ).all()
    return render_template(
        "announcements.html", form=form, errors=problems or {}, audience=audience, picker=_picker(form),
        recent=[(a, progress(db(), a.id)) for a in recent], audiences=AUDIENCES,
    )


@bp.get("/announcements")
@requires("senior")
def index() -> str:
    return _page({"body": "", "audience": "everyone", "day": now().date().isoformat(), "family_ids": [], "family_q": "", "family_page": 0})


@bp.post("/announcements/preview")
@requires("senior")
def preview() -> Any:
    form = _form()
    if "find" in request.form or "family_page" in request.form:  # browsing the hand-picked list
        if form["family_q"]:
            form["audience"] = "families"
        return _page(form)
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
