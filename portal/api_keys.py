"""The API keys page (admins): create a key (its secret shown once, on the answer to the
form), list keys by prefix with scopes and last use, revoke. Another business's keys answer
404 like ids that do not exist."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from portal.api import openapi_document
from portal.api_reference import build_reference
from portal.audit import note
from portal.auth import current_staff, requires
from portal.runtime import db, now
from threads.api_keys import ApiKeyProblems, UnknownApiKey, business_api_keys, create_api_key, revoke_api_key
from threads.errors import UnknownStaff
from threads.models import API_SCOPES

bp = Blueprint("api_keys", __name__)


def _page(form: dict[str, Any] | None = None, errors: dict[str, str] | None = None, secret: str | None = None) -> str:
    keys = business_api_keys(db(), current_staff().business_id)
    form = form or {"name": "", "scopes": []}
    return render_template("api_keys.html", keys=keys, scopes=API_SCOPES, form=form, errors=errors or {}, secret=secret)


@bp.get("/settings/api-keys")
@requires("admin")
def index() -> str:
    return _page()


@bp.get("/settings/api-keys/reference")
@requires("admin")
def reference() -> str:
    """The API reference, rendered from the OpenAPI document on each request (never a copy)."""
    return render_template("api_reference.html", ref=build_reference(openapi_document()))


@bp.post("/settings/api-keys")
@requires("admin")
def create() -> Any:
    form = {"name": request.form.get("name", "")[:200], "scopes": request.form.getlist("scopes")[: len(API_SCOPES) + 1]}
    try:
        key, secret = create_api_key(db(), current_staff().business_id, name=form["name"], scopes=form["scopes"], now=now())
    except ApiKeyProblems as error:
        db().rollback()
        return _page(form, error.problems), 400
    note("apikey.create", f"Created API key {key.name} ({key.prefix}…)", after={"scopes": key.scope_list})
    db().commit()
    # The secret is in this answer only: never stored, never in a redirect or a flash cookie.
    return _page(secret=secret), 201


@bp.post("/settings/api-keys/<int:key_id>/revoke")
@requires("admin")
def revoke(key_id: int) -> Response:
    try:
        key = revoke_api_key(db(), current_staff().business_id, key_id, now())
    except UnknownApiKey as error:
        raise UnknownStaff(str(error)) from None  # answers 404, like any id not of this business
    note("apikey.revoke", f"Revoked API key {key.name} ({key.prefix}…)")
    db().commit()
    flash(f"Revoked {key.name} ({key.prefix}…). It stops working at once.")
    return redirect(url_for("api_keys.index"))
