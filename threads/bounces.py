"""The bounce flag of a contact's address: set by a trusted delivery report, and cleared again.

A flag stops the address's digests (rule 3), so it must be set only on evidence
(a permanent failure reported to the signed VERP address of an email sent to that very
address) and it must be able to clear: a later delivery the receiving side accepted,
mail from the address, or an operator (`pawpost contacts unbounce`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import ColumnElement, Update, and_, bindparam, exists, select, update
from sqlalchemy.orm import Session

from threads.directory import normalise_email
from threads.directory_changes import touch_families
from threads.types import utcnow
from threads.webhooks import email_bounced
from threads.models import Business, Contact, ContactAddress, Family


def mark_bouncing(session: Session, contact_id: int, email: str, reason: str, now: datetime) -> int:
    """Flag one contact's address as bouncing; returns the rows changed."""
    result = session.execute(
        update(ContactAddress)
        .where(ContactAddress.contact_id == contact_id, ContactAddress.email == normalise_email(email))
        .values(bouncing=True, bounced_at=now, bounce_reason=reason[:500])
    )
    changed = result.rowcount or 0
    if changed:
        touch_families(session, and_(ContactAddress.contact_id == contact_id, ContactAddress.email == normalise_email(email)), now)
        email_bounced(session, contact_id, normalise_email(email), reason, now)
    return changed


def clear_bouncing(session: Session, business_id: int, email: str, *, flagged_before: datetime | None = None) -> int:
    """Clear the flag of this address in one business; returns the addresses cleared.

    `flagged_before`: only flags set before that moment (a delivery accepted at that
    moment says nothing about a bounce that arrived after it). The time and reason of the
    last flag stay on the row, so the thread page can still say when it last bounced.

    Runs on the session's connection, without an autoflush: every parent's email runs
    it, and the ORM's update path cost more CPU than the statement. Nothing pending in
    the session is read by it (flush first a contact address you changed yourself).
    """
    parameters = {"business_id": business_id, "address": normalise_email(email), "flagged_before": flagged_before}
    result = session.connection().execute(_clear_statement(flagged_before is not None), parameters)
    cleared = result.rowcount or 0
    if cleared:
        in_business = select(Family.id).where(Family.business_id == business_id)
        touch_families(session, and_(ContactAddress.email == parameters["address"], Contact.family_id.in_(in_business)), utcnow())
    return cleared


@cache
def _clear_statement(only_flagged_before: bool) -> Update:
    query = update(ContactAddress).where(*_flagged())
    if only_flagged_before:
        query = query.where(ContactAddress.bounced_at <= bindparam("flagged_before"))
    return query.values(bouncing=False)


def flagged_in_business() -> ColumnElement[bool]:
    """`clear_bouncing` would clear something, as a condition to add to a larger query (the
    email ingest asks it beside its other reads, and runs the UPDATE only when it is true).
    Bind parameters: `business_id`, and `address` normalised (`normalise_email`)."""
    return exists().where(*_flagged())


def _flagged() -> tuple[ColumnElement[bool], ...]:
    families = select(Family.id).where(Family.business_id == bindparam("business_id"))
    return (
        ContactAddress.bouncing,
        ContactAddress.email == bindparam("address"),
        ContactAddress.contact_id.in_(select(Contact.id).where(Contact.family_id.in_(families))),
    )


def clear_contact_bouncing(session: Session, contact_id: int, email: str, *, flagged_before: datetime) -> int:
    """Clear one contact's address flag when it was set before `flagged_before`.

    Outbound calls it when the receiving side accepted an email to that address after
    the flag: the bounce was about an earlier email.
    """
    result = session.execute(
        update(ContactAddress)
        .where(
            ContactAddress.contact_id == contact_id,
            ContactAddress.email == normalise_email(email),
            ContactAddress.bouncing,
            ContactAddress.bounced_at <= flagged_before,
        )
        .values(bouncing=False),
        execution_options={"synchronize_session": False},
    )
    cleared = result.rowcount or 0
    if cleared:
        touch_families(session, and_(ContactAddress.contact_id == contact_id, ContactAddress.email == normalise_email(email)), utcnow())
    return cleared


@dataclass(frozen=True)
class Unbounced:
    """The flags an operator's clear lifted in one business, and whose families they were."""

    business_id: int
    slug: str
    cleared: int
    families: dict[int, str]  # id → name


def unbounce(session: Session, email: str, business_slug: str | None = None) -> list[Unbounced]:
    """The operator's clear: every flagged copy of this address, in one business or all.

    Returns, for each business that had one flagged, how many and the families they
    belong to (for the audit log).
    """
    query = select(Business.id, Business.slug).order_by(Business.id)
    if business_slug is not None:
        query = query.where(Business.slug == business_slug)
    cleared = []
    for business_id, slug in session.execute(query).all():
        families = dict(
            session.execute(
                select(Family.id, Family.name)
                .join(Contact, Contact.family_id == Family.id)
                .join(ContactAddress, ContactAddress.contact_id == Contact.id)
                .where(Family.business_id == business_id, ContactAddress.email == normalise_email(email), ContactAddress.bouncing)
                .distinct()
            ).all()
        )
        count = clear_bouncing(session, business_id, email) if families else 0
        if count:
            cleared.append(Unbounced(business_id, slug, count, families))
    return cleared
