"""Two-factor sign-in pages (the code step of signing in, turning TOTP on and off) and the
business's settings (admins): names, time zone, delays, and "admins must use two-factor".

Setting up keeps the proposed secret in the signed session cookie until a code proves the
authenticator holds it; only then is it stored. The code step accepts a TOTP code or a
recovery code, within 5 minutes of the password, under the sign-in failure limits.
"""

from __future__ import annotations

import base64
import logging
from datetime import timedelta
from typing import Any

import qrcode
import qrcode.image.svg
from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from portal.auth import (
    client_key,
    current_staff,
    home_url,
    locked_out,
    record_failure,
    requires,
    session_fingerprint,
    start_session,
)
from portal.audit import note
from portal.runtime import db, now, settings
from threads.business_settings import update_business
from threads.errors import FieldProblems
from threads.models import Staff
from threads.two_factor import (
    disable,
    enable,
    new_secret,
    provisioning_uri,
    recovery_codes_left,
    replace_recovery_codes,
    verify_second_factor,
)

logger = logging.getLogger(__name__)

bp = Blueprint("two_factor", __name__)

CODE_STEP_LIFETIME = timedelta(minutes=5)


def qr_data_uri(text: str) -> str:
    """The QR code as an SVG `data:` URI for an <img> (no markup of ours to escape, no script)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode("ascii")


@bp.get("/signin/code")
def code() -> Any:
    if _pending_staff() is None:
        return redirect(url_for("auth.sign_in"))
    return render_template("signin_code.html")


@bp.post("/signin/code")
def code_post() -> Any:
    staff = _pending_staff()
    if staff is None:
        flash("That took too long: sign in again.", "error")
        return redirect(url_for("auth.sign_in"))
    moment, client = now(), client_key(request.remote_addr)
    if locked_out(staff.email, client, moment):
        return render_template("signin_code.html", error="Too many failed attempts. Wait 15 minutes, then try again."), 429
    if not verify_second_factor(db(), staff, request.form.get("code", "").strip()[:64], moment):
        db().rollback()
        record_failure(staff.email, client, moment)
        return render_template("signin_code.html", error="That code is not right. Try the newest code, or a recovery code."), 401
    target = session["second_factor"].get("next")
    start_session(staff)
    db().commit()
    logger.info("staff %s signed in with a second factor", staff.id)
    return redirect(target or home_url(staff))


def _pending_staff() -> Staff | None:
    """Whoever gave the right password in the last 5 minutes, if still active and unchanged."""
    pending = session.get("second_factor")
    if not isinstance(pending, dict) or now().timestamp() - float(pending.get("at", 0)) > CODE_STEP_LIFETIME.total_seconds():
        return None
    staff = db().get(Staff, pending.get("staff_id"))
    if staff is None or not staff.active or not staff.has_two_factor or pending.get("auth") != session_fingerprint(staff):
        return None
    return staff


@bp.get("/account/two-factor")
@requires(enrolment=True)
def setup() -> str:
    staff = current_staff()
    if staff.has_two_factor:
        return render_template("two_factor.html", codes_left=recovery_codes_left(db(), staff))
    secret = session.get("totp_setup")
    if not isinstance(secret, str):
        secret = session["totp_setup"] = new_secret()
    return render_template("two_factor.html", secret=secret, qr=qr_data_uri(provisioning_uri(secret, staff)))


@bp.post("/account/two-factor/enable")
@requires(enrolment=True)
def turn_on() -> Any:
    staff = current_staff()
    secret = session.get("totp_setup")
    if staff.has_two_factor or not isinstance(secret, str):
        return redirect(url_for("two_factor.setup"))
    codes = enable(db(), staff, secret, request.form.get("code", "")[:64], now())
    if codes is None:
        db().rollback()
        error = "That code is not right: check the time on your phone and type the newest code."
        return render_template("two_factor.html", secret=secret, qr=qr_data_uri(provisioning_uri(secret, staff)), error=error), 400
    note("account.two_factor.on", f"{staff.name} turned on two-factor sign-in", staff_id=staff.id)
    db().commit()
    session.pop("totp_setup", None)
    logger.info("staff %s turned on two-factor sign-in", staff.id)
    return render_template("two_factor_codes.html", codes=codes)


@bp.post("/account/two-factor/recovery-codes")
@requires(enrolment=True)
def new_codes() -> Any:
    staff = current_staff()
    if not verify_second_factor(db(), staff, request.form.get("code", "").strip()[:64], now()):
        db().rollback()
        flash("That code is not right.", "error")
        return redirect(url_for("two_factor.setup"))
    codes = replace_recovery_codes(db(), staff, now())
    note("account.two_factor.codes", f"{staff.name} made new recovery codes", staff_id=staff.id)
    db().commit()
    return render_template("two_factor_codes.html", codes=codes)


@bp.post("/account/two-factor/disable")
@requires(enrolment=True)
def turn_off() -> Response:
    staff = current_staff()
    if staff.role == "admin" and staff.business.require_admin_two_factor:
        flash("Your business requires two-factor sign-in for admins.", "error")
        return redirect(url_for("two_factor.setup"))
    if not verify_second_factor(db(), staff, request.form.get("code", "").strip()[:64], now()):
        db().rollback()
        flash("That code is not right.", "error")
        return redirect(url_for("two_factor.setup"))
    disable(db(), staff)
    note("account.two_factor.off", f"{staff.name} turned off two-factor sign-in", staff_id=staff.id)
    db().commit()
    logger.info("staff %s turned off two-factor sign-in", staff.id)
    flash("Two-factor sign-in is off.")
    return redirect(url_for("two_factor.setup"))


@bp.get("/settings/security")
@requires("admin")
def security_settings() -> str:
    return render_template("security_settings.html")


@bp.post("/settings/security")
@requires("admin")
def security_settings_post() -> Response:
    admin = current_staff()
    required = request.form.get("require_admin_two_factor") == "1"
    if required and not admin.has_two_factor:
        flash("Turn on two-factor sign-in for yourself first.", "error")
        return redirect(url_for("two_factor.security_settings"))
    before = admin.business.require_admin_two_factor
    admin.business.require_admin_two_factor = required
    note("settings.security", "Changed whether admins must use two-factor sign-in", before={"admins must use two-factor": before}, after={"admins must use two-factor": required})
    db().commit()
    logger.info("staff %s set require_admin_two_factor=%s for business %s", admin.id, required, admin.business_id)
    flash("Admins must now use two-factor sign-in." if required else "Two-factor sign-in is optional for admins.")
    return redirect(url_for("two_factor.security_settings"))


@bp.get("/settings")
@requires("admin")
def business_settings(form: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> str:
    business = current_staff().business
    values = form or {
        "name": business.name,
        "sender_name": business.sender_name,
        "timezone": business.timezone,
        "notify_delay_seconds": "" if business.notify_delay_seconds is None else str(business.notify_delay_seconds),
        "escalate_after_minutes": "" if business.escalate_after_minutes is None else str(business.escalate_after_minutes),
    }
    return render_template("business_settings.html", form=values, errors=errors or {}, defaults=settings())


@bp.post("/settings")
@requires("admin")
def business_settings_post() -> Any:
    admin = current_staff()
    form = {key: request.form.get(key, "")[:200] for key in ("name", "sender_name", "timezone", "notify_delay_seconds", "escalate_after_minutes")}
    business = admin.business
    before = {k: getattr(business, k) for k in ("name", "sender_name", "timezone", "notify_delay_seconds", "escalate_after_minutes")}
    try:
        update_business(admin.business, **form)
    except FieldProblems as error:
        db().rollback()
        return business_settings(form, error.problems), 400
    after = {k: getattr(business, k) for k in before}
    note("settings.business", "Changed the business settings", before=before, after=after)
    db().commit()
    logger.info("staff %s changed the settings of business %s", admin.id, admin.business_id)
    flash("Settings saved.")
    return redirect(url_for("two_factor.business_settings"))
