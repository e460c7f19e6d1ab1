"""Families pages (senior staff and admins): add a family; edit its name, contacts, their
addresses and its pets; clear a bouncing address; deactivate the family.

Every form writes through `threads.families`, which validates with the import's rules; a
refused form comes back with each problem next to its field (HTTP 400). Another business's
ids answer 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from portal.audit import note
from portal.auth import current_staff, requires
from portal.runtime import db, now, reads_only, settings
from portal.scope import family_for
from threads import audit
from threads import families as directory
from threads.errors import FieldProblems, UnknownFamily
from threads.models import Contact, Family, Pet, Thread

bp = Blueprint("families", __name__)

PAGE = 50


def _form(*names: str) -> dict[str, str]:
    return {name: request.form.get(name, "")[:400] for name in names}


@bp.get("/families")
@requires("senior")
@reads_only
def index(form: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> str:
    staff = current_staff()
    query = request.args.get("q", "").strip().lower()[:100]
    after, after_id = request.args.get("after", "")[:200], request.args.get("after_id", "")
    keyset = (after, int(after_id)) if after and after_id.isdigit() else None  # the next page: no OFFSET scan
    rows = directory.family_lines(db(), staff.business_id, name_contains=query, after=keyset, limit=PAGE + 1)
    more = rows[PAGE - 1] if len(rows) > PAGE else None
    return render_template("families_list.html", families=rows[:PAGE], q=query, more=more, form=form or {}, errors=errors or {})


@bp.post("/families")
@requires("senior")
def create() -> Any:
    form = _form("name", "contact_name", "contact_email")
    try:
        family = directory.create_family(
            db(), current_staff().business_id, name=form["name"], contact_name=form["contact_name"],
            contact_email=form["contact_email"], mail_domain=settings().mail_domain,
        )
    except FieldProblems as error:
        db().rollback()
        return index(form, error.problems), 400
    _audit_family(family.id, f"Added {family.name}", None)
    db().commit()
    flash(f"Added {family.name}.")
    return redirect(url_for("families.edit", family_id=family.id))


@bp.get("/families/<int:family_id>/edit")
@requires("senior")
def edit(family_id: int) -> str:
    return _page(family_for(current_staff(), family_id))


def _page(family: Family, section: str = "", form: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> str:
    thread = db().scalar(select(Thread).where(Thread.family_id == family.id))
    return render_template(
        "family_edit.html", family=family, thread=thread, section=section, form=form or {}, errors=errors or {}
    )


def _change(family_id: int, section: str, fields: tuple[str, ...], work: Callable[[Family, dict[str, str]], str]) -> Any:
    """Run one change; the page again with the problems by field, or back to it with a note."""
    family = family_for(current_staff(), family_id)
    before, name = audit.family_snapshot(family), family.name
    form = _form(*fields)
    try:
        done = work(family, form)
    except FieldProblems as error:
        db().rollback()
        return _page(family_for(current_staff(), family_id), section, form, error.problems), 400
    _audit_family(family_id, f"{name}: {done}", before)
    db().commit()
    flash(done)
    return redirect(url_for("families.edit", family_id=family_id) + (f"#{section}" if section else ""))


def _audit_family(family_id: int, summary: str, before: dict[str, object] | None) -> None:
    """Record the change with the family as it was and as it is now (read back after the flush)."""
    db().flush()
    db().expire_all()
    after = audit.family_snapshot(family_for(current_staff(), family_id))
    note("family.change" if before else "family.create", summary, family_id=family_id, before=before, after=after)


def _contact(family: Family, contact_id: int) -> Contact:
    contact = next((c for c in family.contacts if c.id == contact_id), None)
    if contact is None:
        raise UnknownFamily(f"no contact {contact_id} in family {family.id}")
    return contact


def _address(family: Family, address_id: int) -> Any:
    row = directory.family_address(db(), family, address_id)
    if row is None:
        raise UnknownFamily(f"no address {address_id} in family {family.id}")
    return row


def _pet(family: Family, pet_id: int) -> Pet:
    pet = next((p for p in family.pets if p.id == pet_id), None)
    if pet is None:
        raise UnknownFamily(f"no pet {pet_id} in family {family.id}")
    return pet


@bp.post("/families/<int:family_id>/name")
@requires("senior")
def rename(family_id: int) -> Any:
    def work(family: Family, form: dict[str, str]) -> str:
        directory.rename_family(db(), family, form["name"])
        return "Name saved."

    return _change(family_id, "family", ("name",), work)


@bp.post("/families/<int:family_id>/contacts")
@requires("senior")
def add_contact(family_id: int) -> Any:
    def work(family: Family, form: dict[str, str]) -> str:
        contact = directory.add_contact(db(), family, name=form["name"], email=form["email"], primary=form["primary"] == "1")
        return f"Added {contact.name}."

    return _change(family_id, "new-contact", ("name", "email", "primary"), work)


@bp.post("/families/<int:family_id>/contacts/<int:contact_id>")
@requires("senior")
def update_contact(family_id: int, contact_id: int) -> Any:
    def work(family: Family, form: dict[str, str]) -> str:
        contact = _contact(family, contact_id)
        directory.update_contact(db(), contact, name=form["name"], primary=form["primary"] == "1")
        return f"Saved {contact.name}."

    return _change(family_id, f"contact-{contact_id}", ("name", "primary"), work)


@bp.post("/families/<int:family_id>/contacts/<int:contact_id>/remove")
@requires("senior")
def remove_contact(family_id: int, contact_id: int) -> Any:
    def work(family: Family, form: dict[str, str]) -> str:
        contact = _contact(family, contact_id)
        directory.remove_family_contact(db(), contact, now())
        return f"Removed {contact.name}; their links stop working, their messages stay."

    return _change(family_id, f"contact-{contact_id}", (), work)


@bp.post("/families/<int:family_id>/contacts/<int:contact_id>/addresses")
@requires("senior")
def add_address(family_id: int, contact_id: int) -> Any:
    def work(family: Family, form: dict[str, str]) -> str:
        row = directory.add_address(db(), _contact(family, contact_id), form["email"])
        return f"Added {row.email}."

    return _change(family_id, f"contact-{contact_id}", ("email",), work)


@bp.post("/families/<int:family_id>/addresses/<int:address_id>/remove")
@requires("senior")
def remove_address(family_id: int, address_id: int) -> Any:
    def work(family: Family, form: dict[str, str]) -> str:
        row = _address(family, address_id)
        directory.remove_address(db(), row)
        return f"Removed {row.email}."

    return _change(family_id, f"address-{address_id}", (), work)


@bp.post("/families/<int:family_id>/addresses/<int:address_id>/move")
@requires("senior")
def move_address(family_id: int, address_id: int) -> Any:
    def work(family: Family, form: dict[str, str]) -> str:
        row = _address(family, address_id)
        to = _contact(family, int(form["to"])) if form["to"].isdigit() else None
        if to is None:
            raise FieldProblems({"to": "choose another contact of this family"})
        directory.move_address(db(), row, to)
        return f"{row.email} now belongs to {to.name}."

    return _change(family_id, f"address-{address_id}", ("to",), work)


@bp.post("/families/<int:family_id>/addresses/<int:address_id>/clear-bounce")
@requires("senior")
def clear_bounce(family_id: int, address_id: int) -> Any:
    def work(family: Family, form: dict[str, str]) -> str:
        row = _address(family, address_id)
        directory.clear_bounce(row)
        return f"{row.email} gets emails again."

    return _change(family_id, f"address-{address_id}", (), work)


@bp.post("/families/<int:family_id>/pets")
@requires("senior")
def add_pet(family_id: int) -> Any:
    def work(family: Family, form: dict[str, str]) -> str:
        pet = directory.add_pet(db(), family, name=form["name"], species=form["species"], breed=form["breed"])
        return f"Added {pet.name}."

    return _change(family_id, "new-pet", ("name", "species", "breed"), work)


@bp.post("/families/<int:family_id>/pets/<int:pet_id>")
@requires("senior")
def update_pet(family_id: int, pet_id: int) -> Any:
    def work(family: Family, form: dict[str, str]) -> str:
        pet = _pet(family, pet_id)
        directory.update_pet(db(), pet, name=form["name"], species=form["species"], breed=form["breed"])
        return f"Saved {pet.name}."

    return _change(family_id, f"pet-{pet_id}", ("name", "species", "breed"), work)


@bp.post("/families/<int:family_id>/pets/<int:pet_id>/remove")
@requires("senior")
def remove_pet(family_id: int, pet_id: int) -> Any:
    def work(family: Family, form: dict[str, str]) -> str:
        pet = _pet(family, pet_id)
        directory.remove_pet(db(), pet)
        return f"Removed {pet.name}."

    return _change(family_id, "pets", (), work)


@bp.post("/families/<int:family_id>/deactivate")
@requires("senior")
def deactivate(family_id: int) -> Response:
    return _set_active(family_id, False)


@bp.post("/families/<int:family_id>/activate")
@requires("senior")
def activate(family_id: int) -> Response:
    return _set_active(family_id, True)


def _set_active(family_id: int, active: bool) -> Response:
    family = family_for(current_staff(), family_id)
    before = audit.family_snapshot(family)
    directory.set_family_active(db(), family, active, settings().mail_domain)
    _audit_family(family_id, f"{'Reactivated' if active else 'Deactivated'} {family.name}", before)
    db().commit()
    flash(f"{family.name} is active again: its reply address works." if active else f"{family.name} is deactivated: its reply address now refuses mail.")
    return redirect(url_for("families.edit", family_id=family.id))
