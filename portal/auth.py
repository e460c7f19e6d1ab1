"""Signing staff in and out, who is asking, and the role checks every view declares.

The Flask session cookie holds only the staff id and a fingerprint of their password hash,
so resetting a password or deactivating someone ends their sessions on the next request.
Failed sign-ins are rows in `sign_in_failures`, so the rate limit holds across workers.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, g, jsonify, redirect, render_template, request, session, url_for
from sqlalchemy import delete, func, select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

from outbound import live
from portal.runtime import db, now, settings
from threads.directory import normalise_email
from threads.models import SignInFailure, Staff
from threads.passwords import hash_password, verify_password

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_ADDRESS = 50
# Rows older than this are deleted as new failures arrive; they no longer count for anything.
FAILURE_RETENTION = timedelta(days=1)

View = TypeVar("View", bound=Callable[..., Any])


def password_fingerprint(secret_key: str, password_hash: str | None) -> str:
    """Changes whenever the password does, which signs out every existing session."""
    return hmac.new(secret_key.encode(), (password_hash or "").encode(), hashlib.sha256).hexdigest()[:24]


def session_fingerprint(staff: Staff) -> str:
    return password_fingerprint(settings().secret_key, staff.password_hash)


def start_session(staff: Staff) -> None:
    session.clear()
    session.permanent = True
    session["staff_id"] = staff.id
    session["auth"] = session_fingerprint(staff)


@bp.before_app_request
def load_signed_in_staff() -> None:
    """Set `g.staff` for the request, dropping sessions of deactivated or re-passworded staff."""
    g.staff = None
    if request.endpoint in ("static", "health.healthz"):
        return
    staff_id = session.get("staff_id")
    if staff_id is None:
        return
    staff = db().scalar(select(Staff).options(joinedload(Staff.business)).where(Staff.id == staff_id))
    if staff is None or not staff.active or session.get("auth") != session_fingerprint(staff):
        session.clear()
        return
    g.staff = staff


def current_staff() -> Staff:
    """The signed-in staff member; only call it from views guarded by `requires`."""
    staff = g.staff
    assert staff is not None
    return staff


def home_url(staff: Staff) -> str:
    return url_for("inbox.messages") if staff.is_senior else url_for("schedule.today")


def requires(role: str = "any", *, api: bool = False) -> Callable[[View], View]:
    """Guard a view: signed in (else sign-in page, or 401 for the JSON API), and senior if asked."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            staff = g.staff
            if staff is None:
                if api:
                    return jsonify(error="signed out"), 401
                return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
            if role == "senior" and not staff.is_senior:
                return render_template("error.html", status=403, title="Not for your role"), 403
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


@bp.get("/signin")
def sign_in() -> Any:
    if g.staff is not None:
        return redirect(home_url(g.staff))
    return render_template("signin.html", email="", next=_safe_next(request.args.get("next")))


@bp.post("/signin")
def sign_in_post() -> Any:
    email = normalise_email(request.form.get("email", ""))[:320]
    password = request.form.get("password", "")
    target = _safe_next(request.form.get("next"))
    moment = now()
    address = request.remote_addr or ""
    if _locked_out(email, address, moment):
        logger.warning("sign-in refused: too many failures for %s from %s", email, address)
        error = "Too many failed sign-ins. Wait 15 minutes, then try again."
        return render_template("signin.html", email=email, next=target, error=error), 429
    staff = _authenticate(email, password)
    if staff is None:
        _record_failure(email, address, moment)
        error = "That email and password do not match an active account."
        return render_template("signin.html", email=email, next=target, error=error), 401
    db().execute(delete(SignInFailure).where(SignInFailure.email == email))
    db().commit()
    start_session(staff)
    logger.info("staff %s signed in", staff.id)
    return redirect(target or home_url(staff))


@bp.post("/signout")
def sign_out() -> Response:
    session.clear()
    if g.staff is not None:
        live.signed_out(g.staff.id)  # open streams end; only a still-valid cookie reconnects
    return redirect(url_for("auth.sign_in"))


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("never a real password, only for timing")


def _authenticate(email: str, password: str) -> Staff | None:
    """The active staff member with this email and password, in whichever business.

    An unknown email still costs one hash verification, so timing does not reveal accounts.
    """
    candidates = db().scalars(select(Staff).where(Staff.email == email).order_by(Staff.id)).all()
    if not candidates or not password:
        verify_password(_dummy_hash(), password or "x")
        return None
    for staff in candidates:
        if verify_password(staff.password_hash, password):
            return staff if staff.active else None
    return None


def _locked_out(email: str, address: str, moment: datetime) -> bool:
    since = moment - FAILURE_WINDOW
    by_email = db().scalar(
        select(func.count()).select_from(SignInFailure).where(SignInFailure.email == email, SignInFailure.at > since)
    )
    if (by_email or 0) >= MAX_FAILURES_PER_EMAIL:
        return True
    by_address = db().scalar(
        select(func.count())
        .select_from(SignInFailure)
        .where(SignInFailure.remote_addr == address, SignInFailure.at > since)
    )
    return (by_address or 0) >= MAX_FAILURES_PER_ADDRESS


def _record_failure(email: str, address: str, moment: datetime) -> None:
    session_db = db()
    session_db.execute(delete(SignInFailure).where(SignInFailure.at < moment - FAILURE_RETENTION))
    session_db.add(SignInFailure(email=email, remote_addr=address[:64], at=moment))
    session_db.commit()
    logger.info("failed sign-in for %s from %s", email, address)


def _safe_next(value: str | None) -> str | None:
    """Only same-site paths: a `next` pointing elsewhere would make the form an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    return None if parts.scheme or parts.netloc else value
