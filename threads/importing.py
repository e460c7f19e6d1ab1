"""Importing a business directory from JSON: validate everything, then upsert by ids.

The file shape (ids are the business's own, external ids):

    {"business": {"id", "name", "timezone", "sender_name"},
     "staff": [{"id", "name", "email", "role", "active"?, "password"?}],
     "families": [{"id", "name", "contacts": [{"id", "name", "email" | "emails", "primary"?}],
                   "pets": [{"id"?, "name", "species"?, "breed"?}]}],
     "appointments": [{"id", "family", "staff": [ids], "start", "end", "status"?, "service"?}]}

Nothing is written until the whole file is valid, and the caller commits, so a broken
file changes nothing. Existing rows are updated, new ones added; nothing is deleted (the
API's PUT of one family, `threads.families.replace_family`, removes what its entry omits).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from threads.addresses import new_reply_token
from threads import audit
from threads.audit import family_snapshot
from threads.directory import ensure_thread, normalise_email, refresh_search_terms, remove_contact, search_term_rows
from threads.errors import DirectoryError
from threads.models import (
    APPOINTMENT_STATUSES,
    ROLES,
    Appointment,
    Business,
    Contact,
    ContactAddress,
    Family,
    Pet,
    SearchTerm,
    Staff,
    Thread,
    appointment_staff,
)
from threads.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from threads.staff_sessions import end_all_sessions
from threads.types import utcnow

_EMAIL = re.compile(r"^[^@\s\x00<>()\[\],;:\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


@dataclass(frozen=True)
class ImportChange:
    """One account or family an import created or changed: its values before (None: new) and after."""

    kind: str  # "staff" or "family"
    id: int
    name: str
    before: dict[str, Any] | None
    after: dict[str, Any]


@dataclass
class ImportReport:
    """What an import did (or, with a dry run, would do)."""

    business_id: int | None = None
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    # Staff accounts and existing families whose values changed, for the audit log.
    changes: list[ImportChange] = field(default_factory=list)

    def count(self, kind: str, created: bool) -> None:
        target = self.created if created else self.updated
        target[kind] = target.get(kind, 0) + 1


class _Validator:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, text: str) -> None:
        self.problems.append(f"{path}: {text}")

    def text(self, obj: dict[str, Any], key: str, path: str, *, required: bool = True, limit: int = 200) -> None:
        value = obj.get(key)
        if value is None:
            if required:
                self.fail(f"{path}.{key}", "is required")
            return
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{path}.{key}", "must be a non-empty string")
        elif "\x00" in value:  # no database keeps it (PostgreSQL refuses it outright)
            self.fail(f"{path}.{key}", "must not contain a NUL character")
        elif len(value) > limit:
            self.fail(f"{path}.{key}", f"must be at most {limit} characters")

    def email(self, value: Any, path: str) -> None:
        if not isinstance(value, str) or not _EMAIL.match(value.strip()):
            self.fail(path, f"{value!r} is not an email address")

    def moment(self, value: Any, path: str) -> datetime | None:
        if not isinstance(value, str):
            self.fail(path, "must be an ISO 8601 date-time with an offset, e.g. 2026-11-24T09:00:00-05:00")
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.fail(path, f"{value!r} is not an ISO 8601 date-time")
            return None
        if moment.tzinfo is None:
            self.fail(path, f"{value!r} has no UTC offset")
            return None
        return moment

    def records(self, data: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list):
            self.fail(f"{path}{key}", "must be a list")
            return []
        good = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                good.append(item)
            else:
                self.fail(f"{path}{key}[{index}]", "must be an object")
                good.append({})
        return good

    def unique_ids(self, items: list[dict[str, Any]], path: str, *, required: bool = True) -> set[str]:
        seen: set[str] = set()
        for index, item in enumerate(items):
            ident = item.get("id")
            if ident is None and not required:
                continue
            if not isinstance(ident, str) or not ident.strip() or "\x00" in ident or len(ident) > 100:
                self.fail(f"{path}[{index}].id", "is required (a non-empty string of at most 100 characters, no NUL)")
            elif ident in seen:
                self.fail(f"{path}[{index}].id", f"{ident!r} appears twice")
            else:
                seen.add(ident)
        return seen


def _check_business(check: _Validator, business: dict[str, Any]) -> None:
    check.text(business, "name", "business")
    check.text(business, "sender_name", "business", required=False)
    zone = business.get("timezone")
    try:
        ZoneInfo(zone) if isinstance(zone, str) and zone else None
        if not isinstance(zone, str) or not zone:
            check.fail("business.timezone", "is required (an IANA zone such as America/New_York)")
    except (ZoneInfoNotFoundError, ValueError):
        check.fail("business.timezone", f"{zone!r} is not an IANA time zone")


def validate_business_fields(business: dict[str, Any]) -> dict[str, str]:
    """The import's rules for a business's name, sender name and time zone, keyed by field."""
    check = _Validator()
    _check_business(check, business)
    return _by_field(check, "business")


def _check_staff_member(check: _Validator, member: dict[str, Any], path: str) -> None:
    check.text(member, "name", path)
    check.email(member.get("email"), f"{path}.email")
    if member.get("role") not in ROLES:
        check.fail(f"{path}.role", f"must be one of {', '.join(ROLES)}")


def _check_contact(check: _Validator, contact: dict[str, Any], c_path: str) -> None:
    check.text(contact, "name", c_path)
    emails = contact.get("emails", [contact["email"]] if "email" in contact else None)
    if not isinstance(emails, list) or not emails:
        check.fail(f"{c_path}.email", "is required")
    else:
        for e_index, address in enumerate(emails):
            check.email(address, f"{c_path}.emails[{e_index}]" if "emails" in contact else f"{c_path}.email")
    if "primary" in contact and not isinstance(contact["primary"], bool):
        check.fail(f"{c_path}.primary", "must be true or false")


def _check_pet(check: _Validator, pet: dict[str, Any], p_path: str) -> None:
    check.text(pet, "name", p_path, limit=100)
    check.text(pet, "species", p_path, required=False, limit=50)
    check.text(pet, "breed", p_path, required=False, limit=100)


def _by_field(check: _Validator, prefix: str) -> dict[str, str]:
    """Problems keyed by field ("email"), for forms that show each next to its field."""
    problems: dict[str, str] = {}
    for problem in check.problems:
        where, _, text = problem.partition(": ")
        problems.setdefault(where.removeprefix(prefix + ".").split("[", 1)[0], text)
    return problems


def validate_family_fields(family: dict[str, Any]) -> dict[str, str]:
    """The import's rules for a family's own fields (its name), keyed by field."""
    check = _Validator()
    check.text(family, "name", "family")
    return _by_field(check, "family")


def validate_contact_fields(contact: dict[str, Any]) -> dict[str, str]:
    """The import's rules for one contact (name, email or emails, primary), keyed by field."""
    check = _Validator()
    _check_contact(check, contact, "contact")
    return _by_field(check, "contact")


def validate_pet_fields(pet: dict[str, Any]) -> dict[str, str]:
    """The import's rules for one pet (name, species, breed), keyed by field."""
    check = _Validator()
    _check_pet(check, pet, "pet")
    return _by_field(check, "pet")


def validate_staff_member(member: dict[str, Any]) -> dict[str, str]:
    """The import's rules for one staff member (name, email, role), keyed by field.

    The portal's Staff form and `pawpost staff invite` use this, so a person the form accepts
    is one an import accepts, and each problem can be shown next to its field.
    """
    check = _Validator()
    _check_staff_member(check, member, "staff")
    return _by_field(check, "staff")


def validate_directory(data: Any) -> list[str]:
    """Every problem in the file, each with its path (e.g. `families[2].contacts[0].email`)."""
    check = _Validator()
    if not isinstance(data, dict):
        return ["$: the directory must be a JSON object"]
    business = data.get("business")
    if not isinstance(business, dict):
        check.fail("business", "is required (an object)")
    else:
        check.text(business, "id", "business", limit=64)
        _check_business(check, business)

    staff = check.records(data, "staff", "")
    staff_ids = check.unique_ids(staff, "staff")
    staff_emails: set[str] = set()
    for index, member in enumerate(staff):
        path = f"staff[{index}]"
        _check_staff_member(check, member, path)
        email = normalise_email(member.get("email") or "")
        if email in staff_emails:
            check.fail(f"{path}.email", f"{email!r} is used by another staff member")
        staff_emails.add(email)
        if "active" in member and not isinstance(member["active"], bool):
            check.fail(f"{path}.active", "must be true or false")
        password = member.get("password")
        if password is not None and (not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH):
            check.fail(f"{path}.password", f"must be a string of at least {MIN_PASSWORD_LENGTH} characters")

    families = check.records(data, "families", "")
    family_ids = check.unique_ids(families, "families")
    for index, family in enumerate(families):
        _check_family(check, family, f"families[{index}]")

    appointments = check.records(data, "appointments", "")
    check.unique_ids(appointments, "appointments")
    for index, appointment in enumerate(appointments):
        _check_appointment(check, appointment, f"appointments[{index}]", family_ids, staff_ids, "in this file")
    return check.problems


def _check_family(check: _Validator, family: dict[str, Any], path: str) -> None:
    """One family entry: its name, contacts (one primary at most) and pets."""
    check.text(family, "name", path)
    contacts = check.records(family, "contacts", f"{path}.")
    if not contacts:
        check.fail(f"{path}.contacts", "needs at least one contact")
    check.unique_ids(contacts, f"{path}.contacts", required=False)
    primaries = sum(1 for c in contacts if c.get("primary") is True)
    if contacts and primaries > 1:
        check.fail(f"{path}.contacts", "has more than one primary contact")
    for c_index, contact in enumerate(contacts):
        _check_contact(check, contact, f"{path}.contacts[{c_index}]")
    pets = check.records(family, "pets", f"{path}.")
    check.unique_ids(pets, f"{path}.pets", required=False)
    for p_index, pet in enumerate(pets):
        _check_pet(check, pet, f"{path}.pets[{p_index}]")


def validate_family_entry(family: dict[str, Any]) -> list[str]:
    """The import's rules for one whole family entry, each problem with its path inside the
    entry (`contacts[0].email: ...`)."""
    check = _Validator()
    _check_family(check, family, "$")
    return [problem.removeprefix("$.") for problem in check.problems]


def validate_appointment_entry(appointment: dict[str, Any], family_ids: set[str], staff_ids: set[str]) -> list[str]:
    """The import's rules for one appointment entry (families and staff named by the business's
    ids), each problem with its path inside the entry (`staff[1]: ...`)."""
    check = _Validator()
    _check_appointment(check, appointment, "$", family_ids, staff_ids, "of this business")
    return [problem.removeprefix("$.") for problem in check.problems]


def _check_appointment(
    check: _Validator, appointment: dict[str, Any], path: str, family_ids: set[str], staff_ids: set[str], where: str
) -> None:
    if appointment.get("family") not in family_ids:
        check.fail(f"{path}.family", f"{appointment.get('family')!r} is not a family id {where}")
    assigned = appointment.get("staff")
    if not isinstance(assigned, list) or not assigned:
        check.fail(f"{path}.staff", "must list at least one staff id")
    else:
        for s_index, ident in enumerate(assigned):
            if ident not in staff_ids:
                check.fail(f"{path}.staff[{s_index}]", f"{ident!r} is not a staff id {where}")
    start = check.moment(appointment.get("start"), f"{path}.start")
    end = check.moment(appointment.get("end"), f"{path}.end")
    if start and end and end <= start:
        check.fail(f"{path}.end", "must be after start")
    if appointment.get("status", "scheduled") not in APPOINTMENT_STATUSES:
        check.fail(f"{path}.status", f"must be one of {', '.join(APPOINTMENT_STATUSES)}")
    check.text(appointment, "service", path, required=False, limit=100)


def validate_appointment_fields(appointment: dict[str, Any], family_ids: set[str], staff_ids: set[str]) -> dict[str, str]:
    """The import's rules for one appointment, keyed by field; ids are the business's, as strings."""
    check = _Validator()
    _check_appointment(check, appointment, "appointment", family_ids, staff_ids, "of this business")
    return _by_field(check, "appointment")


def import_directory(session: Session, data: Any, *, mail_domain: str) -> ImportReport:
    """Validate, then upsert the whole directory. Raises `DirectoryError`; never commits."""
    problems = validate_directory(data)
    if problems:
        raise DirectoryError(problems)
    report = ImportReport()
    business = _upsert_business(session, data["business"], report)
    staff_by_id = {m["id"]: upsert_staff(session, business, m, report) for m in data.get("staff", [])}
    families_by_id = upsert_families(session, business, data.get("families", []), mail_domain, report)
    upsert_appointments(session, business, data.get("appointments", []), families_by_id, staff_by_id, report)
    session.flush()
    report.business_id = business.id
    return report


def record_import(session: Session, report: ImportReport, now: datetime, *, actor: Staff | None = None, actor_name: str | None = None, source: str) -> None:
    """The audit entries of an applied import: one for the whole file (what it created and
    updated), and one per staff account or existing family whose values it changed, so the
    Audit page's person and family filters find them. Families new to the directory are
    counted in the first (a business moving in brings thousands at once)."""
    assert report.business_id is not None
    audit.record(session, report.business_id, actor, "import.directory", f"Imported the directory from {source}", now,
                 after={"created": report.created, "updated": report.updated}, actor_name=actor_name)
    for change in report.changes:
        verb = "Added" if change.before is None else "Changed"
        if change.kind == "staff":
            audit.record(session, report.business_id, actor, "staff.import", f"{verb} {change.name} by import", now,
                         staff_id=change.id, before=change.before, after=change.after, actor_name=actor_name)
        else:
            audit.record(session, report.business_id, actor, "family.import", f"{verb} {change.name} by import", now,
                         family_id=change.id, before=change.before, after=change.after, actor_name=actor_name)


def upsert_families(
    session: Session, business: Business, entries: list[dict[str, Any]], mail_domain: str, report: ImportReport,
    *, replace_at: datetime | None = None,
) -> dict[str, Family]:
    """Validated family entries written: known ones updated one by one, new ones in bulk;
    each with its thread. The families by external id.

    With `replace_at`, each entry is the family's whole truth: contacts, addresses and pets
    it does not list are removed (contacts by `remove_contact`, at that instant)."""
    existing = _existing_family_ids(session, business.id, [entry["id"] for entry in entries])
    families_by_id = {}
    for entry in entries:
        if entry["id"] in existing:
            family = _upsert_family(session, business, entry, report, replace_at=replace_at)
            ensure_thread(session, family, mail_domain)
            families_by_id[entry["id"]] = family
    new = [entry for entry in entries if entry["id"] not in existing]
    if new:
        insert_new_families(session, business.id, new, mail_domain, report)
        for start in range(0, len(new), 5000):
            chunk = [e["id"] for e in new[start : start + 5000]]
            families_by_id.update(
                (f.external_id, f)
                for f in session.scalars(select(Family).where(Family.business_id == business.id, Family.external_id.in_(chunk)))
            )
    return families_by_id


def _existing_family_ids(session: Session, business_id: int, external_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(external_ids), 5000):  # bounded IN lists
        chunk = external_ids[start : start + 5000]
        found.update(session.scalars(select(Family.external_id).where(Family.business_id == business_id, Family.external_id.in_(chunk))))
    return found


def insert_new_families(session: Session, business_id: int, entries: list[dict[str, Any]], mail_domain: str, report: ImportReport) -> None:
    """Families not in the directory yet, with contacts, addresses, pets, threads and search
    words, in a few multi-row INSERTs whatever their number (a business moving in brings
    thousands). The same rows `_upsert_family` and `ensure_thread` would write one by one."""
    family_ids = list(
        session.scalars(
            insert(Family).returning(Family.id, sort_by_parameter_order=True),
            [{"business_id": business_id, "external_id": e["id"], "name": e["name"].strip(), "notes": None} for e in entries],
        )
    )
    contacts, addresses_of, pets, terms, threads = [], [], [], [], []
    for entry, family_id in zip(entries, family_ids, strict=True):
        items = entry.get("contacts", [])
        has_primary = any(c.get("primary") is True for c in items)
        for index, item in enumerate(items):
            contacts.append({
                "family_id": family_id, "external_id": item.get("id"), "name": item["name"].strip(),
                "is_primary": item.get("primary", False) if has_primary else index == 0, "phone": None,
            })
            addresses_of.append(list(dict.fromkeys(normalise_email(e) for e in item.get("emails", [item.get("email")]))))
        for item in entry.get("pets", []):
            pets.append({"family_id": family_id, "external_id": item.get("id"), "name": item["name"].strip(), "species": item.get("species"), "breed": item.get("breed")})
        terms += search_term_rows(
            business_id, family_id, entry["name"].strip(), [c["name"].strip() for c in items], [p["name"].strip() for p in entry.get("pets", [])]
        )
        threads.append({
            "business_id": business_id, "family_id": family_id, "reply_token": new_reply_token(),
            "root_message_id": f"thread.{secrets.token_hex(12)}@{mail_domain}", "active": True, "message_count": 0,
        })
    contact_ids = list(session.scalars(insert(Contact).returning(Contact.id, sort_by_parameter_order=True), contacts)) if contacts else []
    addresses = [
        {"contact_id": contact_id, "email": email, "verified": True, "bouncing": False}
        for contact_id, emails in zip(contact_ids, addresses_of, strict=True)
        for email in emails
    ]
    for rows, model in ((addresses, ContactAddress), (pets, Pet), (terms, SearchTerm), (threads, Thread)):
        if rows:
            session.execute(insert(model), rows)
    for kind, count in (("families", len(entries)), ("contacts", len(contacts)), ("pets", len(pets))):
        if count:
            report.created[kind] = report.created.get(kind, 0) + count


def _upsert_business(session: Session, entry: dict[str, Any], report: ImportReport) -> Business:
    business = session.scalar(select(Business).where(Business.slug == entry["id"]))
    report.count("business", business is None)
    if business is None:
        business = Business(slug=entry["id"])
        session.add(business)
    business.name = entry["name"].strip()
    business.timezone = entry["timezone"]
    business.sender_name = (entry.get("sender_name") or entry["name"]).strip()
    session.flush()
    return business


def upsert_staff(session: Session, business: Business, entry: dict[str, Any], report: ImportReport) -> Staff:
    """A validated staff entry written: matched by the business's id, else by email."""
    email = normalise_email(entry["email"])
    member = session.scalar(
        select(Staff).where(Staff.business_id == business.id, Staff.external_id == entry["id"])
    ) or session.scalar(select(Staff).where(Staff.business_id == business.id, Staff.email == email))
    report.count("staff", member is None)
    before = None if member is None else _staff_values(member)
    if member is None:
        member = Staff(business_id=business.id)
        session.add(member)
    member.external_id = entry["id"]
    member.name = entry["name"].strip()
    member.email = email
    member.role = entry["role"]
    member.active = entry.get("active", True)
    password = entry.get("password")
    password_changed = bool(password) and not verify_password(member.password_hash, password)
    if password_changed:
        member.password_hash = hash_password(password)
    session.flush()
    if before is not None and (password_changed or (before["active"] and not member.active)):
        # As in the portal: a new password or a deactivation signs them out everywhere.
        end_all_sessions(session, member.id, utcnow())
    after = _staff_values(member)
    if password_changed:
        after["password"] = "set by the import"
    if after != before:
        report.changes.append(ImportChange("staff", member.id, member.name, before, after))
    return member


def _staff_values(member: Staff) -> dict[str, Any]:
    return {"name": member.name, "email": member.email, "role": member.role, "active": member.active}


def _upsert_family(session: Session, business: Business, entry: dict[str, Any], report: ImportReport, *, replace_at: datetime | None = None) -> Family:
    family = session.scalar(
        select(Family)
        .options(selectinload(Family.contacts).selectinload(Contact.addresses), selectinload(Family.pets))
        .where(Family.business_id == business.id, Family.external_id == entry["id"])
    )
    report.count("families", family is None)
    before = None if family is None else family_snapshot(family)
    if family is None:
        family = Family(business_id=business.id, external_id=entry["id"], contacts=[], pets=[])
        session.add(family)
    family.name = entry["name"].strip()
    contacts = entry.get("contacts", [])
    has_primary = any(c.get("primary") is True for c in contacts)
    kept: list[Contact | Pet] = []
    for index, item in enumerate(contacts):
        emails = [normalise_email(e) for e in item.get("emails", [item.get("email")])]
        contact = _match_contact(family, item, emails)
        report.count("contacts", contact is None)
        if contact is None:
            contact = Contact(addresses=[])
            family.contacts.append(contact)
        kept.append(contact)
        contact.external_id = item.get("id")
        contact.name = item["name"].strip()
        contact.is_primary = item.get("primary", False) if has_primary else index == 0
        known = {a.email for a in contact.addresses}
        for email in emails:
            if email not in known:
                contact.addresses.append(ContactAddress(email=email, verified=True, bouncing=False))
                known.add(email)
        if replace_at is not None:
            for address in [a for a in contact.addresses if a.email not in emails]:
                contact.addresses.remove(address)
    for item in entry.get("pets", []):
        pet = next(
            (p for p in family.pets if (item.get("id") and p.external_id == item["id"]) or (not item.get("id") and p.name == item["name"].strip())),
            None,
        )
        report.count("pets", pet is None)
        if pet is None:
            pet = Pet()
            family.pets.append(pet)
        kept.append(pet)
        pet.external_id = item.get("id")
        pet.name = item["name"].strip()
        pet.species = item.get("species")
        pet.breed = item.get("breed")
    if replace_at is not None:
        _remove_unlisted(session, family, kept, replace_at)
    session.flush()
    refresh_search_terms(session, family)
    after = family_snapshot(family)
    if after != before:
        report.changes.append(ImportChange("family", family.id, family.name, before, after))
    return family


def _remove_unlisted(session: Session, family: Family, kept: list[Contact | Pet], now: datetime) -> None:
    """A true replace: contacts and pets the entry did not list leave the family (a contact
    through the directory's one removal rule: links revoked, history kept)."""
    gone_pets = [p for p in family.pets if p not in kept]
    for pet in gone_pets:
        family.pets.remove(pet)
        session.delete(pet)
    gone_contacts = [c for c in family.contacts if c not in kept]
    for contact in gone_contacts:
        remove_contact(session, contact, now)
    if gone_contacts:
        session.flush()
        session.expire(family, ["contacts"])


def _match_contact(family: Family, item: dict[str, Any], emails: list[str]) -> Contact | None:
    if item.get("id"):
        found = next((c for c in family.contacts if c.external_id == item["id"]), None)
        if found is not None:
            return found
    return next((c for c in family.contacts if {a.email for a in c.addresses} & set(emails)), None)


def upsert_appointments(
    session: Session,
    business: Business,
    entries: list[dict[str, Any]],
    families: dict[str, Family],
    staff: dict[str, Staff],
    report: ImportReport,
) -> None:
    """Validated appointment entries written: known ones updated one by one, new ones (and
    their staff links) in two multi-row INSERTs."""
    ids = [entry["id"] for entry in entries]
    existing: set[str] = set()
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        existing.update(session.scalars(select(Appointment.external_id).where(Appointment.business_id == business.id, Appointment.external_id.in_(chunk))))
    for entry in entries:
        if entry["id"] in existing:
            _upsert_appointment(session, business, entry, families, staff, report)
    new = [entry for entry in entries if entry["id"] not in existing]
    if not new:
        return
    appointment_ids = list(
        session.scalars(
            insert(Appointment).returning(Appointment.id, sort_by_parameter_order=True),
            [
                {
                    "business_id": business.id,
                    "family_id": families[e["family"]].id,
                    "external_id": e["id"],
                    "service": e.get("service") or "visit",
                    "starts_at": datetime.fromisoformat(e["start"]),
                    "ends_at": datetime.fromisoformat(e["end"]),
                    "status": e.get("status", "scheduled"),
                }
                for e in new
            ],
        )
    )
    links = [
        {"appointment_id": appointment_id, "staff_id": staff_id}
        for entry, appointment_id in zip(new, appointment_ids, strict=True)
        for staff_id in dict.fromkeys(staff[ident].id for ident in entry["staff"])
    ]
    if links:
        session.execute(insert(appointment_staff), links)
    report.created["appointments"] = report.created.get("appointments", 0) + len(new)


def _upsert_appointment(
    session: Session,
    business: Business,
    entry: dict[str, Any],
    families: dict[str, Family],
    staff: dict[str, Staff],
    report: ImportReport,
) -> None:
    appointment = session.scalar(
        select(Appointment)
        .options(selectinload(Appointment.staff))
        .where(Appointment.business_id == business.id, Appointment.external_id == entry["id"])
    )
    report.count("appointments", appointment is None)
    if appointment is None:
        appointment = Appointment(business_id=business.id, external_id=entry["id"], staff=[])
        session.add(appointment)
    appointment.family_id = families[entry["family"]].id
    appointment.starts_at = datetime.fromisoformat(entry["start"])
    appointment.ends_at = datetime.fromisoformat(entry["end"])
    appointment.status = entry.get("status", "scheduled")
    appointment.service = entry.get("service") or "visit"
    appointment.staff = [staff[ident] for ident in entry["staff"]]
