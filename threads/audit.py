"""The audit log: every change to the directory, accounts or settings, kept with who made
it, when, and the values before and after. Written in the same transaction as the change
(so a change and its entry commit together); functions take a session and never commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from threads.models import AuditEntry, Staff

MAX_SNAPSHOT = 4000


def snapshot(values: Mapping[str, Any] | None) -> str | None:
    """A change's values as JSON (bounded: a note never holds a whole file)."""
    if values is None:
        return None
    text = json.dumps(values, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= MAX_SNAPSHOT else text[: MAX_SNAPSHOT - 1] + "…"


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
) -> AuditEntry:
    entry = AuditEntry(
        business_id=business_id,
        actor_id=actor.id if actor is not None else None,
        actor_name=actor.name if actor is not None else "operator (command line)",
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
) -> Sequence[AuditEntry]:
    """Newest first; by a person (who made the change or whom it was about) and/or a family."""
    query = select(AuditEntry).where(AuditEntry.business_id == business_id)
    if person_id is not None:
        query = query.where(or_(AuditEntry.actor_id == person_id, AuditEntry.staff_id == person_id))
    if family_id is not None:
        query = query.where(AuditEntry.family_id == family_id)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)).all()


def values_of(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        loaded = json.loads(text)
    except ValueError:
        return {"value": text}
    return loaded if isinstance(loaded, dict) else {"value": loaded}
