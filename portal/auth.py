"""Signing staff in and out, who is asking, and the role checks every view declares.

The Flask session cookie holds only a random token naming a `staff_sessions` row and a
fingerprint of the password hash. Signing out ends the row, so a copy of the cookie stops
working at once; a new password or deactivation ends every row of that person (and the
fingerprint catches a password changed behind the portal's back). Failed sign-ins are rows
in `sign_in_failures`, so the rate limit holds across workers.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, g, jsonify, redirect, render_template, request, session, url_for
from sqlalchemy import Select, delete, func, select
from werkzeug.wrappers import Response

from outbound import live
from portal.runtime import db, now, settings
from portal.views import held_count_of_session_business
from threads.accounts import SESSION_BY_TOKEN_HASH, end_session, is_live, start_staff_session, token_hash, touch_session
from threads.directory import normalise_email
from threads.models import SignInFailure, Staff, StaffSession
from threads.passwords import hash_password, verify_password

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

FAILURE_WINDOW = timedelta(minutes=15)
# Guessing one account from one client stops here; the owner, elsewhere, is never locked out
# by someone else's guesses.
MAX_FAILURES_PER_ACCOUNT_AND_CLIENT = 5
# One client guessing across many accounts stops here.
MAX_FAILURES_PER_CLIENT = 50
# Rows older than this are deleted as new failures arrive; they no longer count for anything.
FAILURE_RETENTION = timedelta(days=1)

View = TypeVar("View", bound=Callable[..., Any])


def password_fingerprint(secret_key: str, password_hash: str | None) -> str:
    """Changes whenever the password does, which signs out every existing session."""
    return hmac.new(secret_key.encode(), (password_hash or "").encode(), hashlib.sha256).hexdigest()[:24]


def session_fingerprint(staff: Staff) -> str:
    return password_fingerprint(settings().secret_key, staff.password_hash)


def start_session(staff: Staff) -> None:
    """Open a server-side session for `staff` and point the cookie at it; the caller commits."""
    _row, token = start_staff_session(
        db(), staff, now(), remote_addr=request.remote_addr, user_agent=request.headers.get("User-Agent")
    )
    session.clear()
    session.permanent = True
    session["sid"] = token
    session["auth"] = session_fingerprint(staff)


@bp.before_app_request
def load_signed_in_staff() -> None:
    """Set `g.staff` for the request from a session the server still holds open.

    A session ended (sign-out, an admin, a new password, deactivation), expired, or whose
    password fingerprint no longer matches signs the browser out.
    """
    g.staff = None
    g.staff_session = None
    if request.endpoint in ("static", "health.healthz"):
        return
    token = session.get("sid")
    if not isinstance(token, str):
        # Signed out (the session may still hold a CSRF token for the sign-in form); a cookie
        # from before server-side sessions (a bare staff id) signs in nobody.
        session.pop("staff_id", None)
        return
    moment = now()
    # One round trip: the session, its staff member and business, and the header's count.
    found = db().execute(_frame_statement(), {"token_hash": token_hash(token)}).first()
    row, held = found if found is not None else (None, 0)
    if row is None or not is_live(row, moment) or session.get("auth") != session_fingerprint(row.staff):
        session.clear()
        db().rollback()
        return
    if touch_session(db(), row, moment):
        db().commit()
    g.staff = row.staff
    g.staff_session = row
    g.held_at_start = (row.business_id, held)


@lru_cache(maxsize=1)
def _frame_statement() -> Select[tuple[StaffSession, int]]:
    """Built once (every signed-in request runs it): `threads.accounts.SESSION_BY_TOKEN_HASH`
    with the header's quarantine count beside the row."""
    return SESSION_BY_TOKEN_HASH.add_columns(held_count_of_session_business())


def current_staff() -> Staff:
    """The signed-in staff member; only call it from views guarded by `requires`."""
    staff = g.staff
    assert staff is not None
    return staff


def home_url(staff: Staff) -> str:
    return url_for("inbox.messages") if staff.is_senior else url_for("schedule.today")


def must_enrol_two_factor(staff: Staff) -> bool:
    """An admin of a business that requires two-factor sign-in, who has not turned it on."""
    return staff.role == "admin" and staff.business.require_admin_two_factor and not staff.has_two_factor


def requires(role: str = "any", *, api: bool = False, enrolment: bool = False) -> Callable[[View], View]:
    """Guard a view: signed in (else sign-in page, or 401 for the JSON API), the role asked
    for, and two-factor sign-in turned on where the business requires it (`enrolment` marks
    the pages that turn it on)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            staff = g.staff
            if staff is None:
                if api:
                    return jsonify(error="signed out"), 401
                return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
            if not enrolment and must_enrol_two_factor(staff):
                if api:
                    return jsonify(error="turn on two-factor sign-in first"), 403
                return redirect(url_for("two_factor.setup"))
            if (role == "senior" and not staff.is_senior) or (role == "admin" and staff.role != "admin"):
                return render_template("error.html", status=403, title="Not for your role"), 403
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


@bp.get("/signin")
def sign_in() -> Any:
    if g.staff is not None:
        return redirect(home_url(g.staff))
    return render_template("signin.html", email="", next=safe_next(request.args.get("next")))


@bp.post("/signin")
def sign_in_post() -> Any:
    email = normalise_email(request.form.get("email", ""))[:320]
    password = request.form.get("password", "")
    target = safe_next(request.form.get("next"))
    moment = now()
    address = client_key(request.remote_addr)
    if locked_out(email, address, moment):
        logger.warning("sign-in refused: too many failures for %s from %s", email, address)
        error = "Too many failed sign-ins. Wait 15 minutes, then try again."
        return render_template("signin.html", email=email, next=target, error=error), 429
    staff = _authenticate(email, password)
    if staff is None:
        record_failure(email, address, moment)
        error = "That email and password do not match an active account."
        return render_template("signin.html", email=email, next=target, error=error), 401
    db().execute(delete(SignInFailure).where(SignInFailure.email == email, SignInFailure.remote_addr == address))
    if staff.has_two_factor:
        db().commit()
        # Half signed in: the password was right; the code page finishes (within 5 minutes).
        session.clear()
        session["second_factor"] = {"staff_id": staff.id, "auth": session_fingerprint(staff), "at": moment.timestamp(), "next": target}
        return redirect(url_for("two_factor.code"))
    start_session(staff)
    db().commit()
    logger.info("staff %s signed in", staff.id)
    return redirect(target or home_url(staff))


@bp.post("/signout")
def sign_out() -> Response:
    """End the session on the server too: the cookie, wherever copied, stops working."""
    if g.staff_session is not None:
        end_session(db(), g.staff_session, now())
        db().commit()
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


def client_key(remote_addr: str | None) -> str:
    """Who is asking, for rate limits: the client's address (from `PAWPOST_TRUSTED_PROXIES`
    hops of X-Forwarded-For behind a proxy), an IPv6 client by its /64, which one host
    usually holds whole."""
    try:
        address = ipaddress.ip_address((remote_addr or "").strip())
    except ValueError:
        return (remote_addr or "unknown")[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def locked_out(email: str, client: str, moment: datetime) -> bool:
    """Too many recent failures for this account from this client, or from this client at all."""
    since = moment - FAILURE_WINDOW
    recent = select(func.count()).select_from(SignInFailure).where(SignInFailure.remote_addr == client, SignInFailure.at > since)
    if (db().scalar(recent.where(SignInFailure.email == email)) or 0) >= MAX_FAILURES_PER_ACCOUNT_AND_CLIENT:
        return True
    return (db().scalar(recent) or 0) >= MAX_FAILURES_PER_CLIENT


def record_failure(email: str, address: str, moment: datetime) -> None:
    session_db = db()
    session_db.execute(delete(SignInFailure).where(SignInFailure.at < moment - FAILURE_RETENTION))
    session_db.add(SignInFailure(email=email, remote_addr=address[:64], at=moment))
    session_db.commit()
    logger.info("failed sign-in for %s from %s", email, address)


def safe_next(value: str | None) -> str | None:
    """Only same-site paths: a `next` pointing elsewhere would make the form an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    return None if parts.scheme or parts.netloc else value
