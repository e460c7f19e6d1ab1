"""The audit log: every change to the directory, accounts or settings, kept with who made
it, when, and the values before and after. Written in the same transaction as the change
(so a change and its entry commit together); functions take a session and never commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from threads.models import AuditEntry, Family, Staff

MAX_SNAPSHOT = 4000
# The name an entry carries when no staff member made the change: `pawpost` at a shell.
OPERATOR = "operator (command line)"


def snapshot(values: Mapping[str, Any] | None) -> str | None:
    """A change's values as JSON (bounded: a note never holds a whole file)."""
    if values is None:
        return None
    text = json.dumps(values, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= MAX_SNAPSHOT else text[: MAX_SNAPSHOT - 1] + "…"


def family_snapshot(family: Family) -> dict[str, object]:
    """What an audit entry keeps of a family: its name, contacts (addresses, bounces) and pets."""
    return {
        "name": family.name,
        "contacts": [
            {
                "name": c.name,
                "primary": c.is_primary,
                "addresses": [a.email + (" (bouncing)" if a.bouncing else "") for a in c.addresses],
            }
            for c in family.contacts
        ],
        "pets": [" ".join(filter(None, [p.name, f"({p.species})" if p.species else "", p.breed or ""])) for p in family.pets],
        "active": family.thread.active if family.thread is not None else True,
    }


def record(
    session: Session,
    business_id: int,
    actor: Staff | None,
    action: str,
    summary: str,
    now: datetime,
    *,
    family_id: int | None = None,
    staff_id: int | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    actor_name: str | None = None,
) -> AuditEntry:
    """One entry in the caller's transaction; `actor` None is the operator at the command
    line, or whatever `actor_name` says (an API key)."""
    entry = AuditEntry(
        business_id=business_id,
        actor_id=actor.id if actor is not None else None,
        actor_name=actor.name if actor is not None else (actor_name or OPERATOR),
        action=action[:64],
        summary=summary[:500],
        family_id=family_id,
        staff_id=staff_id,
        before=snapshot(before),
        after=snapshot(after),
        at=now,
    )
    session.add(entry)
    return entry


def entries(
    session: Session, business_id: int, *, person_id: int | None = None, family_id: int | None = None, before_id: int | None = None, limit: int = 100
) -> tuple[Sequence[AuditEntry], dict[int, str]]:
    """Newest first; by a person (who made the change or whom it was about) and/or a family.
    With the names of the business's families they name, read in the same statement."""
    query = (
        select(AuditEntry, Family.name)
        .outerjoin(Family, and_(Family.id == AuditEntry.family_id, Family.business_id == business_id))
        .where(AuditEntry.business_id == business_id)
    )
    if person_id is not None:
        query = query.where(or_(AuditEntry.actor_id == person_id, AuditEntry.staff_id == person_id))
    if family_id is not None:
        query = query.where(AuditEntry.family_id == family_id)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    rows = session.execute(query.order_by(AuditEntry.id.desc()).limit(limit)).all()
    return [entry for entry, _name in rows], {entry.family_id: name for entry, name in rows if name is not None}


def values_of(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        loaded = json.loads(text)
    except ValueError:
        return {"value": text}
    return loaded if isinstance(loaded, dict) else {"value": loaded}
