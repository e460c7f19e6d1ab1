"""Saved replies: seniors and admins keep them; the composer offers them, filled for the family."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from portal.auth import current_staff, requires
from portal.runtime import db, now
from portal.scope import family_for
from threads.errors import FieldProblems, UnknownThread
from threads.saved_replies import (
    PLACEHOLDERS,
    delete_reply,
    fill,
    placeholder_values,
    reply_of_business,
    save_reply,
    saved_replies,
)

bp = Blueprint("saved_replies", __name__)


def _page(form: dict[str, str] | None = None, problems: dict[str, str] | None = None, editing: int | None = None) -> str:
    staff = current_staff()
    return render_template(
        "saved_replies.html", replies=saved_replies(db(), staff.business_id), form=form or {},
        errors=problems or {}, editing=editing, placeholders=PLACEHOLDERS,
    )


@bp.get("/saved-replies")
@requires("senior")
def index() -> str:
    return _page()


@bp.post("/saved-replies")
@requires("senior")
def create() -> Any:
    form = {"name": request.form.get("name", ""), "body": request.form.get("body", "")}
    try:
        reply = save_reply(db(), current_staff(), form["name"], form["body"], now())
    except FieldProblems as error:
        db().rollback()
        return _page(form, error.problems), 400
    db().commit()
    flash(f"Saved “{reply.name}”.")
    return redirect(url_for("saved_replies.index"))


@bp.post("/saved-replies/<int:reply_id>")
@requires("senior")
def update(reply_id: int) -> Any:
    staff = current_staff()
    reply = reply_of_business(db(), staff.business_id, reply_id)
    if reply is None:
        raise UnknownThread(f"no saved reply {reply_id}")
    form = {"name": request.form.get("name", ""), "body": request.form.get("body", "")}
    try:
        save_reply(db(), staff, form["name"], form["body"], now(), reply=reply)
    except FieldProblems as error:
        db().rollback()
        return _page(form, error.problems, editing=reply_id), 400
    db().commit()
    flash(f"Saved “{form['name'].strip()}”.")
    return redirect(url_for("saved_replies.index"))


@bp.post("/saved-replies/<int:reply_id>/delete")
@requires("senior")
def delete(reply_id: int) -> Response:
    staff = current_staff()
    reply = reply_of_business(db(), staff.business_id, reply_id)
    if reply is None:
        raise UnknownThread(f"no saved reply {reply_id}")
    name = reply.name
    delete_reply(db(), staff, reply, now())
    db().commit()
    flash(f"Deleted “{name}”.")
    return redirect(url_for("saved_replies.index"))


@bp.get("/families/<int:family_id>/saved-replies")
@requires(api=True)
def for_family(family_id: int) -> Any:
    """The saved replies filled for this family and me, for the composer's `/` menu."""
    staff = current_staff()
    family = family_for(staff, family_id)
    values = placeholder_values(family, staff, staff.business.name)
    replies = [{"name": r.name, "text": fill(r.body, values)} for r in saved_replies(db(), staff.business_id)]
    db().commit()
    return jsonify(replies=replies)
