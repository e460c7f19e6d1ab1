"""The Audit page (admins): every directory, account and settings change, newest first,
filterable by person and by family; and `note`, which views call to record their change in
the same transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, g, render_template, request, url_for
from sqlalchemy import select

from portal.auth import current_staff, requires
from portal.runtime import db, now, reads_only
from threads import audit
from threads.models import Family, Staff

bp = Blueprint("audit", __name__)

PAGE = 50


def note(
    action: str,
    summary: str,
    *,
    family_id: int | None = None,
    staff_id: int | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    actor: Staff | None = None,
) -> None:
    """Record the signed-in person's change (or `actor`'s) in the request's transaction."""
    who = actor or g.get("staff")
    assert who is not None
    audit.record(db(), who.business_id, who, action, summary, now(), family_id=family_id, staff_id=staff_id, before=before, after=after)


@bp.app_template_filter("audit_value")
def audit_value(value: Any) -> str:
    """A kept value as a person reads it: lists one per line, a contact as "Name (primary): addresses"."""
    if isinstance(value, list):
        return "\n".join(audit_value(item) for item in value) or "none"
    if isinstance(value, dict):
        if "name" in value and "addresses" in value:
            return f"{value['name']}{' (primary)' if value.get('primary') else ''}: {', '.join(value['addresses'])}"
        return ", ".join(f"{k}: {audit_value(v)}" for k, v in value.items())
    if value is True or value is False:
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _int(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


@bp.get("/audit")
@requires("admin")
@reads_only
def index() -> str:
    business_id = current_staff().business_id
    person_id, family_id, before_id = _int("person"), _int("family"), _int("before")
    # Only the families these entries name come with them (a business may have thousands).
    rows, names = audit.entries(db(), business_id, person_id=person_id, family_id=family_id, before_id=before_id, limit=PAGE)
    people = db().execute(select(Staff.id, Staff.name).where(Staff.business_id == business_id).order_by(Staff.name)).all()
    if family_id and family_id not in names:  # a family without entries (on this page)
        names.update(db().execute(select(Family.id, Family.name).where(Family.business_id == business_id, Family.id == family_id)).all())
    return render_template(
        "audit.html", rows=rows, people=people, family_names=names, staff_names={p.id: p.name for p in people},
        person_id=person_id, family_id=family_id, older=rows[-1].id if len(rows) == PAGE else None, values_of=audit.values_of,
        audit_url=url_for("audit.index"),
    )
