"""Saved replies: a business's canned answers, kept by seniors and admins, offered in the composer.

Placeholders are replaced literally (never `str.format`: a reply's text is not a template
language), so a brace that is not one of PLACEHOLDERS stays as typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from threads import audit
from threads.errors import AccessDenied, FieldProblems
from threads.models import Family, SavedReply, Staff

MAX_NAME = 100
MAX_BODY = 5000
MAX_REPLIES = 200
PLACEHOLDERS = ("{parent_first_name}", "{pet_names}", "{staff_first_name}", "{business}")


def saved_replies(session: Session, business_id: int) -> list[SavedReply]:
    """The business's saved replies by name."""
    return list(
        session.scalars(select(SavedReply).where(SavedReply.business_id == business_id).order_by(SavedReply.name).limit(MAX_REPLIES))
    )


def _check(session: Session, staff: Staff, name: str, body: str, reply_id: int | None) -> tuple[str, str]:
    if not staff.is_senior:
        raise AccessDenied("only seniors and admins keep saved replies")
    name, body = " ".join(name.split()), body.strip()
    problems = {}
    if not name:
        problems["name"] = "Give it a short name, e.g. “Closed tomorrow”."
    elif len(name) > MAX_NAME:
        problems["name"] = f"At most {MAX_NAME} characters."
    elif session.scalar(
        select(SavedReply.id).where(SavedReply.business_id == staff.business_id, SavedReply.name == name, SavedReply.id != (reply_id or 0))
    ):
        problems["name"] = "Another saved reply has this name."
    if not body:
        problems["body"] = "Write the reply."
    elif len(body) > MAX_BODY:
        problems["body"] = f"At most {MAX_BODY} characters."
    if problems:
        raise FieldProblems(problems)
    return name, body


def save_reply(session: Session, staff: Staff, name: str, body: str, now: datetime, *, reply: SavedReply | None = None) -> SavedReply:
    """Create (or change `reply`), audited in the caller's transaction."""
    name, body = _check(session, staff, name, body, reply.id if reply else None)
    before = {"name": reply.name, "body": reply.body} if reply else None
    if reply is None:
        reply = SavedReply(business_id=staff.business_id, name=name, body=body)
        session.add(reply)
    reply.name, reply.body, reply.updated_by_staff_id, reply.updated_at = name, body, staff.id, now
    session.flush()
    audit.record(
        session, staff.business_id, staff, "saved_reply.changed" if before else "saved_reply.created",
        f"Saved reply “{name}”", now, before=before, after={"name": name, "body": body},
    )
    return reply


def delete_reply(session: Session, staff: Staff, reply: SavedReply, now: datetime) -> None:
    if not staff.is_senior:
        raise AccessDenied("only seniors and admins keep saved replies")
    audit.record(session, staff.business_id, staff, "saved_reply.deleted", f"Saved reply “{reply.name}” deleted", now,
                 before={"name": reply.name, "body": reply.body})
    session.delete(reply)
    session.flush()


def reply_of_business(session: Session, business_id: int, reply_id: int) -> SavedReply | None:
    return session.scalar(select(SavedReply).where(SavedReply.id == reply_id, SavedReply.business_id == business_id))


def placeholder_values(family: Family, staff: Staff, business_name: str) -> dict[str, str]:
    """What each placeholder means in this family's thread, written by this staff member."""
    contacts = sorted(family.contacts, key=lambda c: (not c.is_primary, c.id))
    pets = [p.name for p in family.pets]
    return {
        "{parent_first_name}": contacts[0].name.split(" ", 1)[0] if contacts else "there",
        "{pet_names}": pets[0] if len(pets) == 1 else (", ".join(pets[:-1]) + " and " + pets[-1] if pets else "your pets"),
        "{staff_first_name}": staff.name.split(" ", 1)[0],
        "{business}": business_name,
    }


def fill(body: str, values: Mapping[str, str]) -> str:
    """The reply with its placeholders replaced, in one pass (a value holding a placeholder
    is not replaced again)."""
    out, at = [], 0
    while at < len(body):
        found = min(((body.find(key, at), key) for key in values if body.find(key, at) >= 0), default=None)
        if found is None:
            break
        position, key = found
        out.append(body[at:position])
        out.append(values[key])
        at = position + len(key)
    out.append(body[at:])
    return "".join(out)
