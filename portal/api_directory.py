"""The directory over the API: staff, families (contacts, addresses, pets) and appointments to read, and
the bulk upsert that takes the very document `pawpost import` takes.

The bulk upsert goes through `threads.importing.import_directory`, the same validation and
writes as the command and the portal's CSV import: the whole document is checked before
anything is written, and a refused document changes nothing (422 with each problem's JSON
path). A document about another business is refused: a key writes to its own business only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from pawpost.settings import Settings
from portal.api import ApiProblem, ListQuery, api_key, decode_cursor, encode_cursor, operation
from portal.runtime import db, now, settings
from threads.errors import DirectoryError
from threads.importing import import_directory, record_import
from threads.models import Appointment, Business, Contact, Family, Staff


class StaffMember(BaseModel):
    id: str | None = Field(description="The business's own id (external id); null for people added in the portal")
    name: str
    email: str
    role: str
    active: bool


class StaffPage(BaseModel):
    data: list[StaffMember]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class EmailAddress(BaseModel):
    email: str
    bouncing: bool


class FamilyContact(BaseModel):
    id: str | None
    name: str
    primary: bool
    phone: str | None
    addresses: list[EmailAddress]


class FamilyPet(BaseModel):
    id: str | None
    name: str
    species: str | None
    breed: str | None


class FamilyRecord(BaseModel):
    id: str = Field(description="The business's own id (external id)")
    name: str
    contacts: list[FamilyContact]
    pets: list[FamilyPet]


class FamilyPage(BaseModel):
    data: list[FamilyRecord]
    next_cursor: str | None


class AppointmentStaff(BaseModel):
    id: str | None
    name: str


class AppointmentRecord(BaseModel):
    id: str | None = Field(description="The business's own id (external id); null for appointments added in the portal")
    pawpost_id: int
    family_id: str
    staff: list[AppointmentStaff]
    service: str
    starts_at: datetime
    ends_at: datetime
    status: str


class AppointmentPage(BaseModel):
    data: list[AppointmentRecord]
    next_cursor: str | None


class DirectoryDocument(BaseModel):
    """The `pawpost import` document (see README "Importing"): its rules are the import's."""

    model_config = ConfigDict(extra="forbid")
    business: dict[str, Any]
    staff: list[dict[str, Any]] = Field(default_factory=list)
    families: list[dict[str, Any]] = Field(default_factory=list)
    appointments: list[dict[str, Any]] = Field(default_factory=list)


class FamilyEntry(BaseModel):
    """One family as `pawpost import` takes it (its id is in the URL); the import's rules apply."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    contacts: list[dict[str, Any]] = Field(max_length=100, description="Each {id?, name, email | emails, primary?}")
    pets: list[dict[str, Any]] = Field(default_factory=list, max_length=100, description="Each {id?, name, species?, breed?}")


class DirectoryResult(BaseModel):
    created: dict[str, int]
    updated: dict[str, int]


def _staff_record(person: Staff) -> dict[str, Any]:
    return {"id": person.external_id, "name": person.name, "email": person.email, "role": person.role, "active": person.active}


def _family_record(family: Family) -> dict[str, Any]:
    return {
        "id": family.external_id,
        "name": family.name,
        "contacts": [
            {"id": c.external_id, "name": c.name, "primary": c.is_primary, "phone": c.phone,
             "addresses": [{"email": a.email, "bouncing": a.bouncing} for a in c.addresses]}
            for c in family.contacts
        ],
        "pets": [{"id": p.external_id, "name": p.name, "species": p.species, "breed": p.breed} for p in family.pets],
    }


@operation("GET", "/staff", scope="directory:read", summary="List the business's staff", response=StaffPage, query=ListQuery)
def list_staff(query: ListQuery) -> dict[str, Any]:
    rows = db().scalars(
        select(Staff).where(Staff.business_id == api_key().business_id, Staff.id > decode_cursor(query.cursor)).order_by(Staff.id).limit(query.limit + 1)
    ).all()
    page = rows[: query.limit]
    return {"data": [_staff_record(p) for p in page], "next_cursor": encode_cursor(page[-1].id) if len(rows) > query.limit else None}


def _families_query() -> Any:
    return (
        select(Family)
        .where(Family.business_id == api_key().business_id)
        .options(selectinload(Family.contacts).selectinload(Contact.addresses), selectinload(Family.pets))
    )


@operation("GET", "/families", scope="directory:read", summary="List families with contacts, addresses and pets", response=FamilyPage, query=ListQuery)
def list_families(query: ListQuery) -> dict[str, Any]:
    rows = db().scalars(_families_query().where(Family.id > decode_cursor(query.cursor)).order_by(Family.id).limit(query.limit + 1)).all()
    page = rows[: query.limit]
    return {"data": [_family_record(f) for f in page], "next_cursor": encode_cursor(page[-1].id) if len(rows) > query.limit else None}


@operation("GET", "/families/{external_id}", scope="directory:read", summary="Read one family by the business's id", response=FamilyRecord, problems=(404,))
def get_family(external_id: str) -> dict[str, Any]:
    family = db().scalar(_families_query().where(Family.external_id == external_id))
    if family is None:
        raise ApiProblem(404, "not-found", "No such family", f"no family with id {external_id!r}")
    return _family_record(family)


def _appointment_record(appointment: Appointment) -> dict[str, Any]:
    return {
        "id": appointment.external_id, "pawpost_id": appointment.id, "family_id": appointment.family.external_id,
        "staff": [{"id": s.external_id, "name": s.name} for s in appointment.staff],
        "service": appointment.service, "starts_at": appointment.starts_at, "ends_at": appointment.ends_at, "status": appointment.status,
    }


def _appointments_query() -> Any:
    return select(Appointment).where(Appointment.business_id == api_key().business_id).options(selectinload(Appointment.family), selectinload(Appointment.staff))


@operation("GET", "/appointments", scope="directory:read", summary="List appointments", response=AppointmentPage, query=ListQuery)
def list_appointments(query: ListQuery) -> dict[str, Any]:
    rows = db().scalars(_appointments_query().where(Appointment.id > decode_cursor(query.cursor)).order_by(Appointment.id).limit(query.limit + 1)).all()
    page = rows[: query.limit]
    return {"data": [_appointment_record(a) for a in page], "next_cursor": encode_cursor(page[-1].id) if len(rows) > query.limit else None}


@operation("GET", "/appointments/{external_id}", scope="directory:read", summary="Read one appointment by the business's id", response=AppointmentRecord, problems=(404,))
def get_appointment(external_id: str) -> dict[str, Any]:
    appointment = db().scalar(_appointments_query().where(Appointment.external_id == external_id))
    if appointment is None:
        raise ApiProblem(404, "not-found", "No such appointment", f"no appointment with id {external_id!r}")
    return _appointment_record(appointment)


@operation(
    "POST", "/directory", scope="directory:write", summary="Bulk upsert: the `pawpost import` document, validated whole",
    response=DirectoryResult, body=DirectoryDocument, problems=(400, 415),
)
def upsert_directory(body: DirectoryDocument) -> dict[str, Any]:
    document = body.model_dump()
    slug = db().scalar(select(Business.slug).where(Business.id == api_key().business_id))
    if document["business"].get("id") != slug:
        raise ApiProblem(
            422, "invalid-directory", "Invalid directory", "the document is about another business",
            errors=[{"pointer": "/business/id", "in": "body", "detail": f"must be this key's business, {slug!r}"}],
        )
    config: Settings = settings()
    try:
        report = import_directory(db(), document, mail_domain=config.mail_domain)
    except DirectoryError as error:
        raise ApiProblem(422, "invalid-directory", "Invalid directory", f"{len(error.problems)} problem(s); nothing was written", errors=[_path_error(p) for p in error.problems]) from None
    record_import(db(), report, now(), source="the API (POST /directory)", actor_name=_key_name())
    return {"created": report.created, "updated": report.updated}


@operation(
    "PUT", "/families/{external_id}", scope="directory:write", summary="Create or update a family by the business's id (the import's rules)",
    response=FamilyRecord, body=FamilyEntry, problems=(400, 415),
)
def put_family(external_id: str, body: FamilyEntry) -> dict[str, Any]:
    """Contacts and pets are matched and updated as `pawpost import` does; none is removed."""
    business = db().scalar(select(Business).where(Business.id == api_key().business_id))
    assert business is not None
    document = {
        "business": {"id": business.slug, "name": business.name, "timezone": business.timezone, "sender_name": business.sender_name},
        "families": [{"id": external_id, **body.model_dump()}],
    }
    try:
        report = import_directory(db(), document, mail_domain=settings().mail_domain)
    except DirectoryError as error:
        errors = [_path_error(p.removeprefix("families[0].").removeprefix("families[0]")) for p in error.problems]
        raise ApiProblem(422, "invalid-family", "Invalid family", f"{len(errors)} problem(s); nothing was written", errors=errors) from None
    record_import(db(), report, now(), source=f"the API (PUT /families/{external_id[:100]})", actor_name=_key_name())
    family = db().scalar(_families_query().where(Family.external_id == external_id))
    assert family is not None
    return _family_record(family)


def _key_name() -> str:
    """How the Audit page names a change made through the API: by the key that made it."""
    key = api_key()
    return f"API key {key.name} ({key.prefix}…)"


def _path_error(problem: str) -> dict[str, str]:
    """"families[2].contacts[0].email: is required" → a JSON path and its detail."""
    path, _, detail = problem.partition(": ")
    return {"path": "$" if path in ("$", "") else "$." + path, "in": "body", "detail": detail or problem}
