"""The directory over the API: staff, families (contacts, addresses, pets) and appointments to
list (cursor pagination, `updated_since`), read, create or replace by the business's own id,
cancel, archive or delete; and the bulk upsert that takes the very document `pawpost import` takes.

Every write goes through the directory's one implementation (`threads.importing`,
`threads.families`, `threads.appointments`, `threads.accounts`): the import command, the CSV
import and the admin forms use the same rules and writes, so a row the API accepts is one the
import accepts, and `updated_at` moves whichever door changed it. A refused write changes
nothing (422, each problem with its JSON path). Everything is scoped to the key's business:
another business's ids answer 404 like ids nobody has. `appointment.changed` webhooks are for
changes made in the portal; a change the integrator made itself is not echoed back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import selectinload

from pawpost.settings import Settings
from portal.api import ApiProblem, ListQuery, api_key, decode_cursor, encode_cursor, operation
from portal.runtime import db, now, settings
from threads.accounts import put_staff, set_active
from threads.appointments import cancel_appointment, delete_appointment, put_appointment
from threads import audit
from threads.errors import DirectoryError
from threads.families import replace_family, set_family_active
from threads.importing import import_directory, record_import
from threads.models import APPOINTMENT_STATUSES, ROLES, Appointment, Business, Contact, Family, Staff



def _utc_representable(moment: datetime) -> datetime:
    """An instant the database can hold in UTC (year 1 with a positive offset is not)."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


Instant = Annotated[AwareDatetime, AfterValidator(_utc_representable)]


Row = TypeVar("Row")


class DirectoryListQuery(ListQuery):
    """A directory list: by id, or, with `updated_since`, by (updated_at, id)."""

    cursor: str | None = Field(default=None, pattern=r"^([0-9]{1,16}\.)?[0-9]{1,9}$", description="`next_cursor` of the previous page (with the same `updated_since`)")
    updated_since: Instant | None = Field(
        default=None,
        description="Only rows changed at or after this instant (RFC 3339, with an offset); the page is then ordered by "
        "(updated_at, id), so a row changed while you page comes again later, never skipped. Pass the newest `updated_at` "
        "you kept, minus a little for changes still committing.",
    )


class StaffMember(BaseModel):
    id: str | None = Field(description="The business's own id (external id); null for people added in the portal")
    name: str
    email: str
    role: str
    active: bool
    updated_at: datetime


class StaffPage(BaseModel):
    data: list[StaffMember]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class StaffEntry(BaseModel):
    """One staff member as `pawpost import` takes it (its id is in the URL); the import's rules apply."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    role: Literal[ROLES] = Field(description="basic, senior or admin")  # type: ignore[valid-type]
    active: bool = Field(default=True, description="false deactivates them (signed out everywhere)")


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
    active: bool = Field(description="false once archived: its reply address is refused, its history kept")
    contacts: list[FamilyContact]
    pets: list[FamilyPet]
    updated_at: datetime = Field(description="When the family, a contact, an address or a pet last changed")


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
    updated_at: datetime


class AppointmentPage(BaseModel):
    data: list[AppointmentRecord]
    next_cursor: str | None


class AppointmentEntry(BaseModel):
    """One appointment as `pawpost import` takes it (its id is in the URL); the import's rules apply."""

    model_config = ConfigDict(extra="forbid")
    family: str = Field(max_length=100, description="The family's id (the business's own)")
    staff: list[str] = Field(min_length=1, max_length=50, description="The assigned staff members' ids (the business's own)")
    start: Instant
    end: Instant = Field(description="After `start`; a boarding stay may span days")
    status: Literal[APPOINTMENT_STATUSES] = "scheduled"  # type: ignore[valid-type]
    service: str | None = Field(default=None, max_length=100, description='Defaults to "visit"')


class DirectoryDocument(BaseModel):
    """The `pawpost import` document (see README "Importing"): its rules are the import's."""

    model_config = ConfigDict(extra="forbid")
    business: dict[str, Any]
    staff: list[dict[str, Any]] = Field(default_factory=list)
    families: list[dict[str, Any]] = Field(default_factory=list)
    appointments: list[dict[str, Any]] = Field(default_factory=list)


class FamilyEntry(BaseModel):
    """One family as `pawpost import` takes it (its id is in the URL); the import's rules apply.
    A PUT is a true replace: contacts, addresses and pets not listed are removed."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    contacts: list[dict[str, Any]] = Field(max_length=100, description="Each {id?, name, email | emails, primary?}")
    pets: list[dict[str, Any]] = Field(default_factory=list, max_length=100, description="Each {id?, name, species?, breed?}")


class DirectoryResult(BaseModel):
    created: dict[str, int]
    updated: dict[str, int]


# -- pages ---------------------------------------------------------------------------------


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _change_cursor(at: datetime, last_id: int) -> str:
    """The last row's (updated_at, id), as microseconds since 1970 and the id."""
    return f"{(at - EPOCH) // MICROSECOND}.{last_id}"


def _after_change(cursor: str) -> tuple[datetime, int]:
    micros, _, last_id = cursor.partition(".")
    return EPOCH + int(micros) * MICROSECOND, int(last_id)


def _page(statement: Select[Any], model: type[Staff] | type[Family] | type[Appointment], query: DirectoryListQuery, shape: Any) -> dict[str, Any]:
    """One page of `statement`'s rows, by id or (with `updated_since`) by (updated_at, id)."""
    changed = query.cursor is not None and "." in query.cursor
    if query.cursor is not None and changed != (query.updated_since is not None):
        raise ApiProblem(422, "invalid-request", "Invalid request", "the query was refused", errors=[
            {"pointer": "cursor", "in": "query", "detail": "pass the cursor back with the same updated_since it came with"}])
    if query.updated_since is None:
        statement = statement.where(model.id > decode_cursor(query.cursor)).order_by(model.id)
    else:
        statement = statement.where(model.updated_at >= query.updated_since)
        if query.cursor is not None:
            at, last_id = _after_change(query.cursor)
            statement = statement.where(or_(model.updated_at > at, and_(model.updated_at == at, model.id > last_id)))
        statement = statement.order_by(model.updated_at, model.id)
    rows = db().scalars(statement.limit(query.limit + 1)).all()
    page = rows[: query.limit]
    cursor = None
    if len(rows) > query.limit:
        last = page[-1]
        cursor = encode_cursor(last.id) if query.updated_since is None else _change_cursor(last.updated_at, last.id)
    return {"data": [shape(row) for row in page], "next_cursor": cursor}


# -- staff ---------------------------------------------------------------------------------


def _staff_record(person: Staff) -> dict[str, Any]:
    return {"id": person.external_id, "name": person.name, "email": person.email, "role": person.role, "active": person.active, "updated_at": person.updated_at}


def _found(row: Row | None, kind: str, external_id: str) -> Row:
    """The key's business's row by its external id; any other id is not found (404, never 403)."""
    if row is None:
        raise ApiProblem(404, "not-found", f"No such {kind}", f"no {kind} with id {external_id!r}")
    return row


def _one_staff(external_id: str) -> Staff:
    return _found(db().scalar(select(Staff).where(Staff.business_id == api_key().business_id, Staff.external_id == external_id)), "staff member", external_id)


@operation("GET", "/staff", scope="directory:read", summary="List the business's staff", response=StaffPage, query=DirectoryListQuery)
def list_staff(query: DirectoryListQuery) -> dict[str, Any]:
    return _page(select(Staff).where(Staff.business_id == api_key().business_id), Staff, query, _staff_record)


@operation("GET", "/staff/{external_id}", scope="directory:read", summary="Read one staff member by the business's id", response=StaffMember, problems=(404,))
def get_staff(external_id: str) -> dict[str, Any]:
    return _staff_record(_one_staff(external_id))


@operation(
    "PUT", "/staff/{external_id}", scope="directory:write", summary="Create or replace a staff member by the business's id (the import's rules; matched by id, else email)",
    response=StaffMember, body=StaffEntry, problems=(400, 415),
)
def put_staff_member(external_id: str, body: StaffEntry) -> dict[str, Any]:
    try:
        person, created = put_staff(db(), _business(), external_id, body.model_dump())
    except DirectoryError as error:
        raise _invalid("invalid-staff", "Invalid staff member", error) from None
    _audit("staff.api", f"{'Added' if created else 'Replaced'} {person.name}", staff_id=person.id, after=_staff_record(person))
    return _staff_record(person)


@operation(
    "DELETE", "/staff/{external_id}", scope="directory:write", summary="Deactivate a staff member (signed out everywhere; their messages and history stay)",
    response=StaffMember, problems=(404,),
)
def deactivate_staff(external_id: str) -> dict[str, Any]:
    person = _one_staff(external_id)
    set_active(db(), person, False, now())
    db().flush()
    _audit("staff.deactivate", f"Deactivated {person.name}", staff_id=person.id)
    return _staff_record(person)


# -- families ------------------------------------------------------------------------------


def _family_record(family: Family) -> dict[str, Any]:
    return {
        "id": family.external_id,
        "name": family.name,
        "active": family.thread.active if family.thread is not None else True,
        "contacts": [
            {"id": c.external_id, "name": c.name, "primary": c.is_primary, "phone": c.phone,
             "addresses": [{"email": a.email, "bouncing": a.bouncing} for a in c.addresses]}
            for c in family.contacts
        ],
        "pets": [{"id": p.external_id, "name": p.name, "species": p.species, "breed": p.breed} for p in family.pets],
        "updated_at": family.updated_at,
    }


def _families_query() -> Any:
    return (
        select(Family)
        .where(Family.business_id == api_key().business_id)
        .options(selectinload(Family.contacts).selectinload(Contact.addresses), selectinload(Family.pets), selectinload(Family.thread))
    )


def _one_family(external_id: str) -> Family:
    return _found(db().scalar(_families_query().where(Family.external_id == external_id)), "family", external_id)


@operation("GET", "/families", scope="directory:read", summary="List families with contacts, addresses and pets", response=FamilyPage, query=DirectoryListQuery)
def list_families(query: DirectoryListQuery) -> dict[str, Any]:
    return _page(_families_query(), Family, query, _family_record)


@operation("GET", "/families/{external_id}", scope="directory:read", summary="Read one family by the business's id", response=FamilyRecord, problems=(404,))
def get_family(external_id: str) -> dict[str, Any]:
    return _family_record(_one_family(external_id))


@operation(
    "PUT", "/families/{external_id}", scope="directory:write",
    summary="Create or replace a family by the business's id: contacts, addresses and pets not listed are removed (the import's rules)",
    response=FamilyRecord, body=FamilyEntry, problems=(400, 415),
)
def put_family(external_id: str, body: FamilyEntry) -> dict[str, Any]:
    """A removed contact's parent links stop working; their messages keep their name. An
    archived family is active again."""
    try:
        family, created = replace_family(db(), _business(), external_id, body.model_dump(), mail_domain=settings().mail_domain, now=now())
    except DirectoryError as error:
        raise _invalid("invalid-family", "Invalid family", error) from None
    _audit("family.api", f"{'Added' if created else 'Replaced'} {family.name}", family_id=family.id, after=audit.family_snapshot(family))
    db().expire_all()
    return _family_record(_one_family(external_id))


@operation(
    "DELETE", "/families/{external_id}", scope="directory:write",
    summary="Archive a family, as the portal's Deactivate does: its reply address is refused, its thread and history kept (PUT makes it active again)",
    response=FamilyRecord, problems=(404,),
)
def archive_family(external_id: str) -> dict[str, Any]:
    family = _one_family(external_id)
    set_family_active(db(), family, False, settings().mail_domain)
    db().flush()
    _audit("family.deactivate", f"Archived {family.name}", family_id=family.id)
    return _family_record(family)


# -- appointments --------------------------------------------------------------------------


def _appointment_record(appointment: Appointment) -> dict[str, Any]:
    return {
        "id": appointment.external_id, "pawpost_id": appointment.id, "family_id": appointment.family.external_id,
        "staff": [{"id": s.external_id, "name": s.name} for s in appointment.staff],
        "service": appointment.service, "starts_at": appointment.starts_at, "ends_at": appointment.ends_at, "status": appointment.status,
        "updated_at": appointment.updated_at,
    }


def _appointments_query() -> Any:
    return select(Appointment).where(Appointment.business_id == api_key().business_id).options(selectinload(Appointment.family), selectinload(Appointment.staff))


def _one_appointment(external_id: str) -> Appointment:
    return _found(db().scalar(_appointments_query().where(Appointment.external_id == external_id)), "appointment", external_id)


@operation("GET", "/appointments", scope="directory:read", summary="List appointments", response=AppointmentPage, query=DirectoryListQuery)
def list_appointments(query: DirectoryListQuery) -> dict[str, Any]:
    return _page(_appointments_query(), Appointment, query, _appointment_record)


@operation("GET", "/appointments/{external_id}", scope="directory:read", summary="Read one appointment by the business's id", response=AppointmentRecord, problems=(404,))
def get_appointment(external_id: str) -> dict[str, Any]:
    return _appointment_record(_one_appointment(external_id))


@operation(
    "PUT", "/appointments/{external_id}", scope="directory:write",
    summary="Create or replace an appointment by the business's id (the import's rules; who is scheduled changes at once)",
    response=AppointmentRecord, body=AppointmentEntry, problems=(400, 415),
)
def put_appointment_by_id(external_id: str, body: AppointmentEntry) -> dict[str, Any]:
    entry = body.model_dump(exclude_none=True)
    entry["start"], entry["end"] = body.start.isoformat(), body.end.isoformat()
    try:
        put_appointment(db(), _business(), external_id, entry)
    except DirectoryError as error:
        raise _invalid("invalid-appointment", "Invalid appointment", error) from None
    db().expire_all()
    record = _appointment_record(appointment := _one_appointment(external_id))
    _audit("appointment.api", f"Set appointment {external_id[:100]}", family_id=appointment.family_id, after=record)
    return record


@operation(
    "POST", "/appointments/{external_id}/cancel", scope="directory:write",
    summary="Cancel an appointment: it stays, with status cancelled, and no longer schedules anyone (PUT schedules it again)",
    response=AppointmentRecord, problems=(404,),
)
def cancel_appointment_by_id(external_id: str) -> dict[str, Any]:
    appointment = _one_appointment(external_id)
    cancel_appointment(appointment)
    db().flush()
    _audit("appointment.cancel", f"Cancelled appointment {external_id[:100]}", family_id=appointment.family_id)
    return _appointment_record(appointment)


@operation(
    "DELETE", "/appointments/{external_id}", scope="directory:write",
    summary="Delete an appointment for good (cancel keeps it, marked cancelled)", response=None, status=204, problems=(404,),
)
def delete_appointment_by_id(external_id: str) -> None:
    appointment = _one_appointment(external_id)
    family_id = appointment.family_id
    delete_appointment(db(), appointment)
    _audit("appointment.delete", f"Deleted appointment {external_id[:100]}", family_id=family_id)


# -- the whole directory -------------------------------------------------------------------


def _business() -> Business:
    business = db().get(Business, api_key().business_id)
    assert business is not None
    return business


def _invalid(kind: str, title: str, error: DirectoryError) -> ApiProblem:
    return ApiProblem(422, kind, title, f"{len(error.problems)} problem(s); nothing was written", errors=[_path_error(p) for p in error.problems])


@operation(
    "POST", "/directory", scope="directory:write", summary="Bulk upsert: the `pawpost import` document, validated whole",
    response=DirectoryResult, body=DirectoryDocument, problems=(400, 415),
)
def upsert_directory(body: DirectoryDocument) -> dict[str, Any]:
    document = body.model_dump()
    slug = _business().slug
    if document["business"].get("id") != slug:
        raise ApiProblem(
            422, "invalid-directory", "Invalid directory", "the document is about another business",
            errors=[{"pointer": "/business/id", "in": "body", "detail": f"must be this key's business, {slug!r}"}],
        )
    config: Settings = settings()
    try:
        report = import_directory(db(), document, mail_domain=config.mail_domain)
    except DirectoryError as error:
        raise _invalid("invalid-directory", "Invalid directory", error) from None
    record_import(db(), report, now(), source="the API (POST /directory)", actor_name=_key_name())
    return {"created": report.created, "updated": report.updated}


def _key_name() -> str:
    """How the Audit page names a change made through the API: by the key that made it."""
    key = api_key()
    return f"API key {key.name} ({key.prefix}…)"


def _audit(action: str, summary: str, **kept: Any) -> None:
    """An API write on the Audit page beside the portal's and the shell's, named by its key."""
    audit.record(db(), api_key().business_id, None, action, f"{summary} through the API", now(), actor_name=_key_name(), **kept)


def _path_error(problem: str) -> dict[str, str]:
    """"families[2].contacts[0].email: is required" → a JSON path and its detail."""
    path, _, detail = problem.partition(": ")
    return {"path": "$" if path in ("$", "") else "$." + path, "in": "body", "detail": detail or problem}
