"""Mentions in internal notes: `@Jordan` names a staff member of the business, who is emailed a link."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from threads.models import Staff

# `@` at the start or after a non-word character (an address like a@b.com is no mention),
# then a name of letters, digits, dots, hyphens and apostrophes.
_MENTION = re.compile(r"(?<![\w@])@([^\W_][\w.'’-]{0,99})")
MAX_MENTIONS = 20


def _key(name: str) -> str:
    """How a name compares: case, accents and separators ignored ("@jose" is José)."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if c.isalnum())


def mentioned_names(body: str) -> list[str]:
    """The distinct `@names` of a text, in order, at most MAX_MENTIONS."""
    seen: dict[str, None] = {}
    for match in _MENTION.finditer(body):
        key = _key(match.group(1).rstrip(".'’-"))
        if key:
            seen.setdefault(key, None)
        if len(seen) >= MAX_MENTIONS:
            break
    return list(seen)


def mentioned_staff(session: Session, business_id: int, body: str, *, author_id: int | None = None) -> list[Staff]:
    """Active staff of the business named in `body` by first name or full name, never the author.

    A first name two active staff share mentions both: better two people look than none.
    """
    names = set(mentioned_names(body))
    if not names:
        return []
    staff = session.scalars(
        select(Staff).where(Staff.business_id == business_id, Staff.active).order_by(Staff.id)
    ).all()
    return [
        person
        for person in staff
        if person.id != author_id
        and (_key(person.name) in names or _key(person.name.split(" ", 1)[0]) in names)
    ]
