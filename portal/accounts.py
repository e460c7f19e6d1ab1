"""Pages reached from an email instead of a sign-in: invitations, forgotten passwords.

An invitation or reset link opens a page to choose a password; setting it uses the link up,
ends every session the old password had, and signs the person in. "Forgot password?" answers
the same whether or not the address has an account, and is rate-limited per address and per
client, so it can neither list accounts nor flood someone's inbox.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Blueprint, redirect, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from outbound.accounts import queue_password_reset, send_soon
from portal.audit import note
from portal.auth import client_key, home_url, start_session
from portal.runtime import db, now, settings
from threads.accounts import issue_token, redeem_token, valid_token
from threads.directory import normalise_email
from threads.rate_limits import allow
from threads.models import Staff
from threads.passwords import MIN_PASSWORD_LENGTH, WeakPassword, hash_password

logger = logging.getLogger(__name__)

bp = Blueprint("accounts", __name__)

RESET_WINDOW = timedelta(hours=1)
RESETS_PER_ADDRESS = 3
RESETS_PER_CLIENT = 10
HEADINGS = {"invite": "Welcome to Pawpost", "password_reset": "Choose a new password"}


@bp.get("/invite/<token>")
def invite(token: str) -> Any:
    return _password_page("invite", token)


@bp.post("/invite/<token>")
def invite_post(token: str) -> Any:
    return _set_password("invite", token)


@bp.get("/reset/<token>")
def reset(token: str) -> Any:
    return _password_page("password_reset", token)


@bp.post("/reset/<token>")
def reset_post(token: str) -> Any:
    return _set_password("password_reset", token)


def _password_page(purpose: str, token: str, errors: dict[str, str] | None = None, status: int = 200) -> Any:
    row = valid_token(db(), token[:200], purpose, now())
    context = {"heading": HEADINGS[purpose], "purpose": purpose, "min_length": MIN_PASSWORD_LENGTH, "errors": errors or {}}
    if row is None:
        return render_template("set_password.html", person=None, **context), 404
    return render_template("set_password.html", person=row.staff, **context), status


def _set_password(purpose: str, token: str) -> Any:
    password, confirm = request.form.get("password", ""), request.form.get("confirm", "")
    row = valid_token(db(), token[:200], purpose, now())
    if row is None:
        return _password_page(purpose, token)
    errors = {}
    try:
        password_hash = hash_password(password[:1000])
    except WeakPassword as error:
        errors["password"] = str(error).capitalize() + "."
    if not errors and password != confirm:
        errors["confirm"] = "The two passwords are not the same."
    if errors:
        db().rollback()
        return _password_page(purpose, token, errors, 400)
    staff = redeem_token(db(), row, password_hash, now())
    note(f"account.{purpose}.used", f"{staff.name} set a password from {'an invitation' if purpose == 'invite' else 'a reset link'}", staff_id=staff.id, actor=staff)
    start_session(staff)
    db().commit()
    logger.info("staff %s set a password from a %s link", staff.id, purpose)
    return redirect(home_url(staff))


@bp.get("/forgot")
def forgot() -> str:
    return render_template("forgot.html", email="", sent=False)


@bp.post("/forgot")
def forgot_post() -> Any:
    email = normalise_email(request.form.get("email", ""))[:320]
    moment = now()
    buckets = {f"password-reset:address:{email}": RESETS_PER_ADDRESS, f"password-reset:client:{client_key(request.remote_addr)}": RESETS_PER_CLIENT}
    if not email or not allow(db(), buckets, RESET_WINDOW, moment):
        db().commit()
        error = "Too many reset requests. Wait an hour, then try again." if email else "Enter your email address."
        return render_template("forgot.html", email=email, sent=False, error=error), 429 if email else 400
    outbox_ids = []
    people = db().scalars(
        select(Staff).options(joinedload(Staff.business)).where(Staff.email == email, Staff.active).order_by(Staff.id)
    ).all()
    for person in people:
        token_row, token = issue_token(db(), person, "password_reset", moment)
        outbox_ids.append(queue_password_reset(db(), settings(), token_row, token, moment))
    db().commit()
    send_soon(outbox_ids)
    logger.info("password reset asked from %s: %d email(s) queued", client_key(request.remote_addr), len(outbox_ids))
    return render_template("forgot.html", email=email, sent=True)
