"""The business directory: families with their thread, and finding a family by name."""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import Select, Subquery, bindparam, case, delete, func, literal, select, union_all
from sqlalchemy.orm import Session

from threads.addresses import new_reply_token
from threads.errors import StaffAddress
from threads.models import Business, Contact, ContactAddress, Family, Pet, SearchTerm, Staff, Thread
from threads.parent_links import revoke_parent_links

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def normalise_words(text: str) -> list[str]:
    """Lowercase, accent-free words: "Zoë O'Brien" → ["zoe", "o", "brien"]."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _WORD.findall(plain.casefold())


def normalise_email(address: str) -> str:
    return address.strip().lower()


def find_staff_by_email(session: Session, business_id: int, email: str) -> Staff | None:
    return session.scalar(
        select(Staff).where(Staff.business_id == business_id, Staff.email == normalise_email(email))
    )


def ensure_thread(session: Session, family: Family, mail_domain: str) -> Thread:
    """The family's one thread, created with a fresh reply token on first need."""
    thread = session.scalar(select(Thread).where(Thread.family_id == family.id))
    if thread is None:
        thread = Thread(
            business_id=family.business_id,
            family_id=family.id,
            reply_token=new_reply_token(),
            root_message_id=f"thread.{secrets.token_hex(12)}@{mail_domain}",
            message_count=0,
        )
        session.add(thread)
        session.flush()
    return thread


def search_term_rows(
    business_id: int, family_id: int, family_name: str, contact_names: list[str], pet_names: list[str]
) -> list[dict[str, object]]:
    """The `search_terms` rows of one family: each normalised word once per source."""
    seen: set[tuple[str, str]] = set()
    sources = [("family", family_name)] + [("contact", n) for n in contact_names] + [("pet", n) for n in pet_names]
    rows: list[dict[str, object]] = []
    for source, text in sources:
        for word in normalise_words(text):
            if (word, source) not in seen:
                seen.add((word, source))
                rows.append({"business_id": business_id, "family_id": family_id, "term": word[:100], "source": source})
    return rows


def refresh_search_terms(session: Session, family: Family) -> None:
    """Rewrite the family's search words from its name, contacts and pets."""
    session.execute(delete(SearchTerm).where(SearchTerm.family_id == family.id))
    rows = search_term_rows(
        family.business_id, family.id, family.name, [c.name for c in family.contacts], [p.name for p in family.pets]
    )
    session.add_all(SearchTerm(**row) for row in rows)
    session.flush()


@dataclass(frozen=True)
class FamilyMatch:
    family_id: int
    family_name: str
    thread_id: int | None
    contact_names: tuple[str, ...]
    pet_names: tuple[str, ...]


def _like_prefix(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


MATCHES_PER_WORD = 2000
MAX_WORDS = 5


def _word_scores(index: int) -> Subquery:
    """(family_id, best) for the typed word `index`: 4 for an exact word, 2 for a prefix, +1 off the family name."""
    word, prefix = bindparam(f"word_{index}"), bindparam(f"prefix_{index}")
    points = case((SearchTerm.term == word, 4), else_=2) + case((SearchTerm.source != "family", 1), else_=0)
    matches = (
        select(SearchTerm.family_id, points.label("points"))
        .where(SearchTerm.business_id == bindparam("business_id"), SearchTerm.term.like(prefix, escape="\\"))
        .limit(MATCHES_PER_WORD)
        .subquery()
    )
    return (
        select(matches.c.family_id, func.max(matches.c.points).label("best"))
        .group_by(matches.c.family_id)
        .subquery()
    )


@cache
def _ranked_statement(word_count: int) -> Select[tuple[int, str, int | None]]:
    """Best `limit` families for `word_count` typed words, built once per count.

    Building this nested statement costs more Python than the database takes to run it,
    so the words, business and limit are bound parameters of one cached construct.
    """
    per_word = [_word_scores(index) for index in range(word_count)]
    if word_count == 1:  # nothing to intersect (and the planner estimates rows far better)
        scored = select(per_word[0].c.family_id, per_word[0].c.best.label("score")).cte("scored")
    else:
        matched = union_all(*(select(w.c.family_id, w.c.best) for w in per_word)).subquery()
        scored = (
            select(matched.c.family_id, func.sum(matched.c.best).label("score"))
            .group_by(matched.c.family_id)
            .having(func.count() == word_count)
            .cte("scored")
        )
    # Ties are broken by name in the database, so only `limit` rows ever leave it; the
    # thread ids are joined to those rows only (a short prefix scores ~1,500 families).
    best = (
        select(Family.id, Family.name, scored.c.score)
        .join(scored, scored.c.family_id == Family.id)
        .where(Family.business_id == bindparam("business_id"))
        .order_by(scored.c.score.desc(), func.lower(Family.name), Family.id)
        .limit(bindparam("limit"))
        .subquery("best")
    )
    return (
        select(best.c.id, best.c.name, Thread.id)
        .outerjoin(Thread, Thread.family_id == best.c.id)
        .order_by(best.c.score.desc(), func.lower(best.c.name), best.c.id)
    )


@cache
def _names_statement() -> Select[tuple[int, str, str]]:
    """Contact (primary first) and pet names of the families in `ids`, as plain rows."""
    ids = bindparam("ids", expanding=True)
    names = union_all(
        select(Contact.family_id, literal("contact").label("kind"), Contact.name, case((Contact.is_primary, 0), else_=1), Contact.id)
        .where(Contact.family_id.in_(ids)),
        select(Pet.family_id, literal("pet").label("kind"), Pet.name, literal(0), Pet.id).where(Pet.family_id.in_(ids)),
    ).subquery()
    return select(names.c.family_id, names.c.kind, names.c.name).order_by(*names.c[3:5])



def search_families(session: Session, business: Business | int, query: str, *, limit: int = 10) -> list[FamilyMatch]:
    """Families whose contact, pet or family name starts with each word typed.

    Case- and accent-insensitive and partial ("bel" finds Bella). Best first: more
    words matched exactly, then pet and contact names over the family name, then by name.

    The database scores, intersects and orders the words' matches and returns only the
    first `limit`; only those are loaded. A short prefix matches thousands of families.
    """
    business_id = business if isinstance(business, int) else business.id
    words = normalise_words(query)[:MAX_WORDS]
    if not words or limit < 1:
        return []
    params: dict[str, object] = {"business_id": business_id, "limit": limit}
    for index, word in enumerate(words):
        params[f"word_{index}"] = word
        params[f"prefix_{index}"] = _like_prefix(word)
    ranked = session.execute(_ranked_statement(len(words)), params).all()
    if not ranked:
        return []
    ids = [row[0] for row in ranked]
    contacts: dict[int, list[str]] = {family_id: [] for family_id in ids}
    pets: dict[int, list[str]] = {family_id: [] for family_id in ids}
    for family_id, kind, name in session.execute(_names_statement(), {"ids": ids}):
        (contacts if kind == "contact" else pets)[family_id].append(name)
    return [
        FamilyMatch(
            family_id=family_id,
            family_name=family_name,
            thread_id=thread_id,
            contact_names=tuple(contacts[family_id]),
            pet_names=tuple(pets[family_id]),
        )
        for family_id, family_name, thread_id in ranked
    ]


def contact_for_address(session: Session, family: Family, address: str, *, verified_only: bool = True) -> Contact | None:
    """The contact of this family who owns the address (aliases included)."""
    parameters = {"family_id": family.id, "email": normalise_email(address)}
    return session.scalars(_contact_for_address_statement(verified_only), parameters).first()


@cache
def _contact_for_address_statement(verified_only: bool) -> Select[tuple[Contact]]:
    """Built once: every parent's email asks it (the author check)."""
    query = (
        select(Contact)
        .join(ContactAddress, ContactAddress.contact_id == Contact.id)
        .where(Contact.family_id == bindparam("family_id"), ContactAddress.email == bindparam("email"))
    )
    return query.where(ContactAddress.verified) if verified_only else query


def add_contact_address(session: Session, contact: Contact, address: str) -> ContactAddress:
    """Give a contact another address they write from (e.g. released from quarantine).

    Raises `StaffAddress` for an address of a staff member of the contact's business:
    once an alias, everything that staff member emails would post under the parent's name.
    """
    email = normalise_email(address)
    family = session.get(Family, contact.family_id)
    if family is not None and find_staff_by_email(session, family.business_id, email) is not None:
        raise StaffAddress(f"{email} belongs to a staff member; it cannot be a contact's address")
    existing = session.scalar(
        select(ContactAddress).where(ContactAddress.contact_id == contact.id, ContactAddress.email == email)
    )
    if existing is not None:
        existing.verified = True
        return existing
    entry = ContactAddress(contact_id=contact.id, email=email, verified=True, bouncing=False)
    session.add(entry)
    session.flush()
    return entry


def remove_contact(session: Session, contact: Contact, now: datetime) -> None:
    """A contact leaves their family: the directory's one removal rule (admin form, API).

    Their parent links stop working, their addresses go and their email choice is paused, so
    no email reaches them and mail from those addresses no longer posts; the row stays, marked removed, so the
    messages they wrote keep their name. Another contact becomes primary if they were.
    """
    family = contact.family
    revoke_parent_links(session, contact.id, now)
    contact.addresses.clear()
    contact.email_choice = "paused"  # no digest or summary is ever planned for them again
    contact.removed_at = now
    contact.external_id = None
    was_primary, contact.is_primary = contact.is_primary, False
    session.flush()
    session.expire(family, ["contacts"])
    if was_primary and family.contacts and not any(c.is_primary for c in family.contacts):
        family.contacts[0].is_primary = True
    refresh_search_terms(session, family)


def family_of_business(session: Session, business_id: int, family_id: int) -> Family | None:
    """A family by id, only within the business: ids from URLs never cross tenants."""
    return session.scalar(select(Family).where(Family.id == family_id, Family.business_id == business_id))


def thread_of_business(session: Session, business_id: int, thread_id: int) -> Thread | None:
    return session.scalar(select(Thread).where(Thread.id == thread_id, Thread.business_id == business_id))
