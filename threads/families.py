"""Editing the directory one change at a time: families, contacts, addresses, pets; and a
whole family replaced by the business's id (the API's PUT).

The portal's forms write through these functions; each validates with the same rules as
`pawpost import` (`threads.importing.validate_*_fields`) and raises `FieldProblems` with each
problem keyed by its field. A family deactivated keeps everything, but its thread is
inactive, so its reply address is refused at RCPT (`550 5.1.1`). Functions take a session
and never commit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from threads.directory import ensure_thread, normalise_email, refresh_search_terms, remove_contact
from threads.errors import DirectoryError, FieldProblems
from threads.importing import (
    ImportReport,
    upsert_families,
    validate_contact_fields,
    validate_family_entry,
    validate_family_fields,
    validate_pet_fields,
)
from threads.models import Business, Contact, ContactAddress, Family, Pet, Thread
from threads.types import utcnow



def _text(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def create_family(session: Session, business_id: int, *, name: str, contact_name: str, contact_email: str, mail_domain: str) -> Family:
    """A family with its primary contact and its thread (and so its reply address)."""
    problems = validate_family_fields({"name": name})
    problems.update({f"contact_{k}": v for k, v in validate_contact_fields({"name": contact_name, "email": contact_email}).items()})
    if problems:
        raise FieldProblems(problems)
    family = Family(business_id=business_id, external_id=f"web-{secrets.token_hex(8)}", name=name.strip(), contacts=[], pets=[])
    session.add(family)
    family.contacts.append(
        Contact(name=contact_name.strip(), is_primary=True, addresses=[ContactAddress(email=normalise_email(contact_email), verified=True)])
    )
    session.flush()
    ensure_thread(session, family, mail_domain)
    refresh_search_terms(session, family)
    return family


def rename_family(session: Session, family: Family, name: str) -> None:
    problems = validate_family_fields({"name": name})
    if problems:
        raise FieldProblems(problems)
    family.name = name.strip()
    refresh_search_terms(session, family)


def add_contact(session: Session, family: Family, *, name: str, email: str, primary: bool) -> Contact:
    problems = validate_contact_fields({"name": name, "email": email})
    address = normalise_email(email)
    if "email" not in problems and _address_in_family(family, address) is not None:
        problems["email"] = f"{address} is already an address of this family"
    if problems:
        raise FieldProblems(problems)
    contact = Contact(name=name.strip(), is_primary=False, addresses=[ContactAddress(email=address, verified=True)])
    family.contacts.append(contact)
    session.flush()
    if primary or len(family.contacts) == 1:
        make_primary(family, contact)
    refresh_search_terms(session, family)
    return contact


def update_contact(session: Session, contact: Contact, *, name: str, primary: bool) -> None:
    problems = validate_contact_fields({"name": name, "email": contact.email or "x@example.com"})
    if problems:
        raise FieldProblems(problems)
    contact.name = name.strip()
    if primary:
        make_primary(contact.family, contact)
    refresh_search_terms(session, contact.family)


def remove_family_contact(session: Session, contact: Contact, now: datetime) -> None:
    """The Families page's "Remove" on a contact: `remove_contact`, but a family keeps at
    least one contact (the import's rule)."""
    if len(contact.family.contacts) <= 1:
        raise FieldProblems({"contact": "a family keeps at least one contact: add another first"})
    remove_contact(session, contact, now)


def make_primary(family: Family, contact: Contact) -> None:
    """One primary per family: this contact."""
    for other in family.contacts:
        other.is_primary = other.id == contact.id


def add_address(session: Session, contact: Contact, email: str) -> ContactAddress:
    """An address staff vouch for: verified at once (replies from it post)."""
    problems = validate_contact_fields({"name": contact.name, "email": email})
    address = normalise_email(email)
    if "email" not in problems and _address_in_family(contact.family, address) is not None:
        problems["email"] = f"{address} is already an address of this family"
    if problems:
        raise FieldProblems({"email": problems["email"]} if "email" in problems else problems)
    row = ContactAddress(email=address, verified=True, bouncing=False)
    contact.addresses.append(row)
    session.flush()
    return row


def remove_address(session: Session, row: ContactAddress) -> None:
    if len(row.contact.addresses) <= 1:
        raise FieldProblems({"email": "a contact keeps at least one address: add another first"})
    row.contact.addresses.remove(row)
    session.flush()


def move_address(session: Session, row: ContactAddress, to: Contact) -> None:
    """Give an address to the family's other contact (mail from it then posts as them)."""
    source = row.contact
    if to.family_id != source.family_id or to.id == source.id:
        raise FieldProblems({"to": "choose another contact of this family"})
    if len(source.addresses) <= 1:
        raise FieldProblems({"to": f"{source.name} keeps at least one address: add another first"})
    if any(a.email == row.email for a in to.addresses):
        raise FieldProblems({"to": f"{to.name} already has {row.email}"})
    row.contact_id = to.id
    session.flush()
    session.expire(source, ["addresses"])
    session.expire(to, ["addresses"])


def clear_bounce(row: ContactAddress) -> None:
    """Staff fixed the address (or it works again): digests go to it again."""
    row.bouncing = False
    row.bounced_at = None
    row.bounce_reason = None


def add_pet(session: Session, family: Family, *, name: str, species: str, breed: str) -> Pet:
    values = {"name": name, "species": _text(species), "breed": _text(breed)}
    problems = validate_pet_fields({k: v for k, v in values.items() if v is not None})
    if problems:
        raise FieldProblems(problems)
    pet = Pet(name=name.strip(), species=values["species"], breed=values["breed"])
    family.pets.append(pet)
    session.flush()
    refresh_search_terms(session, family)
    return pet


def update_pet(session: Session, pet: Pet, *, name: str, species: str, breed: str) -> None:
    values = {"name": name, "species": _text(species), "breed": _text(breed)}
    problems = validate_pet_fields({k: v for k, v in values.items() if v is not None})
    if problems:
        raise FieldProblems(problems)
    pet.name, pet.species, pet.breed = name.strip(), values["species"], values["breed"]
    refresh_search_terms(session, pet.family)


def remove_pet(session: Session, pet: Pet) -> None:
    family = pet.family
    family.pets.remove(pet)
    session.delete(pet)
    session.flush()
    refresh_search_terms(session, family)


def set_family_active(session: Session, family: Family, active: bool, mail_domain: str) -> None:
    """A deactivated family's reply address is refused (`550 5.1.1`); reactivating restores it.
    The family counts as changed (`updated_at`): the API shows whether it is active."""
    thread = ensure_thread(session, family, mail_domain)
    if thread.active != active:
        thread.active = active
        family.updated_at = utcnow()


def replace_family(session: Session, business: Business, external_id: str, entry: dict[str, Any], *, mail_domain: str, now: datetime) -> tuple[Family, bool]:
    """Create or replace a family by the business's id (the API's PUT), with the import's
    rules: the entry is the family's whole truth, so contacts, addresses and pets it does not
    list are removed (contacts by `remove_contact`: links revoked, history kept), and a
    deactivated family is active again. Raises `DirectoryError` (paths inside the entry);
    the family, and whether it is new."""
    problems = validate_family_entry(entry)
    if problems:
        raise DirectoryError(problems)
    report = ImportReport()
    family = upsert_families(session, business, [{**entry, "id": external_id}], mail_domain, report, replace_at=now)[external_id]
    set_family_active(session, family, True, mail_domain)
    session.flush()
    return family, "families" in report.created


def _address_in_family(family: Family, address: str) -> ContactAddress | None:
    return next((a for c in family.contacts for a in c.addresses if a.email == address), None)


def family_address(session: Session, family: Family, address_id: int) -> ContactAddress | None:
    """An address of one of this family's contacts, by id (else None: 404 at the edge)."""
    return session.scalar(
        select(ContactAddress)
        .join(Contact, Contact.id == ContactAddress.contact_id)
        .where(ContactAddress.id == address_id, Contact.family_id == family.id)
    )


@dataclass
class ContactLine:
    name: str
    bouncing: int  # how many of the contact's addresses bounce


@dataclass
class FamilyLine:
    """One family as the Families list shows it (plain values: no ORM objects per row)."""

    id: int
    name: str
    active: bool
    contacts: list[ContactLine] = field(default_factory=list)
    pets: list[str] = field(default_factory=list)


def family_lines(session: Session, business_id: int, *, name_contains: str = "", after: tuple[str, int] | None = None, limit: int = 50) -> list[FamilyLine]:
    """A page of the business's families by name, after `after` (name, id): a keyset read
    of the (business_id, name, id) index, with contacts and pets in two more statements."""
    query = (
        select(Family.id, Family.name, Thread.active)
        .outerjoin(Thread, Thread.family_id == Family.id)
        .where(Family.business_id == business_id)
        .order_by(Family.name, Family.id)
        .limit(limit)
    )
    if name_contains:
        query = query.where(Family.name.ilike(f"%{name_contains}%"))
    if after is not None:
        query = query.where(or_(Family.name > after[0], and_(Family.name == after[0], Family.id > after[1])))
    lines = {row.id: FamilyLine(row.id, row.name, row.active is not False) for row in session.execute(query)}
    if not lines:
        return []
    # Bouncing addresses counted per contact through the (contact_id, email) index: joined
    # and grouped, PostgreSQL hashed every address of every business for 50 families.
    bouncing = (
        select(func.count()).where(ContactAddress.contact_id == Contact.id, ContactAddress.bouncing).scalar_subquery()
    )
    contacts = session.execute(
        select(Contact.family_id, Contact.name, bouncing)
        .where(Contact.family_id.in_(lines))
        .order_by(Contact.family_id, Contact.is_primary.desc(), Contact.id)
    )
    for family_id, name, bouncing in contacts:
        lines[family_id].contacts.append(ContactLine(name, bouncing))
    for family_id, name in session.execute(select(Pet.family_id, Pet.name).where(Pet.family_id.in_(lines)).order_by(Pet.id)):
        lines[family_id].pets.append(name)
    return list(lines.values())
