"""Quarantine review: senior staff (portal) or an operator (CLI) release or discard an email.

An email is quarantined when its sender is not allowed on the thread (or DMARC failed at
our own edge). Releasing posts it exactly as the ingest would have: as a contact the reviewer chose (and
can remember the address as that contact's alias so the next email from it goes straight
through), or as the staff member whose own address sent it (never an alias: a staff
address is never a contact's). These functions never commit: the caller owns the
transaction and, after committing a release, calls `outbound.notify.message_posted`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from inbound.ingest import parse_for_storage, post_parsed
from inbound.parse import UnparseableEmail
from inbound.route import AuthorCheck
from threads.directory import add_contact_address, find_staff_by_email
from threads.errors import AccessDenied, PawpostError
from threads.models import Contact, InboundEmail, Message, Staff, Thread
from threads.posting import message_by_email_id


class QuarantineError(PawpostError):
    """The email cannot be released or discarded (not quarantined, wrong family, no text)."""


def quarantined_emails(session: Session, business_id: int | None = None, *, limit: int = 100) -> list[InboundEmail]:
    """Emails waiting for review, oldest first (one business, or all for the operator)."""
    query = select(InboundEmail).where(InboundEmail.outcome == "quarantined").order_by(InboundEmail.id).limit(limit)
    if business_id is not None:
        query = query.where(InboundEmail.business_id == business_id)
    return list(session.scalars(query))


def release(
    session: Session,
    inbound_email: InboundEmail,
    author: Contact | Staff,
    *,
    add_alias: bool,
    reviewer: Staff | None,
    now: datetime,
) -> Message:
    """Post a quarantined email as `author` and mark it released.

    The author is a contact of the email's family, or the staff member whose own address
    sent it (e.g. basic staff writing on a day they are not scheduled): their words are
    posted under their name, never a parent's. Only a contact can get the sender's
    address as an alias, and never a staff address (`StaffAddress`, before anything is posted).
    """
    thread = _reviewable_thread(session, inbound_email, reviewer)
    try:
        parsed = parse_for_storage(inbound_email.raw)
    except UnparseableEmail as error:
        raise QuarantineError("the stored email cannot be read") from error
    if isinstance(author, Staff):
        if add_alias:
            raise QuarantineError("a staff member's address is never remembered as anyone's alias")
        if author.business_id != thread.business_id or author.email != parsed.sender_address:
            raise QuarantineError(f"only {author.name}'s own email can be released as {author.name}")
    elif author.family_id != thread.family_id:
        raise QuarantineError(f"{author.name} is not a contact of this thread's family")
    if add_alias and parsed.sender_address and isinstance(author, Contact):
        add_contact_address(session, author, parsed.sender_address)  # raises StaffAddress first
    dedupe_id = inbound_email.message_id_header or f"inbound.{inbound_email.id}"
    message = message_by_email_id(session, thread, dedupe_id)  # the same email also came in allowed
    if message is None:
        try:
            message = post_parsed(session, thread, AuthorCheck(author), parsed, dedupe_id, now)
        except PawpostError as error:
            raise QuarantineError("nothing is left to post once quoted history is removed") from error
    inbound_email.outcome = "released"
    inbound_email.posted_message_id = message.id
    _reviewed(inbound_email, reviewer, now)
    session.flush()
    return message


def sender_staff(session: Session, inbound_email: InboundEmail, sender_address: str | None) -> Staff | None:
    """The staff member of the email's business whose address sent it, if any."""
    if not sender_address or inbound_email.business_id is None:
        return None
    return find_staff_by_email(session, inbound_email.business_id, sender_address)


def discard(session: Session, inbound_email: InboundEmail, *, reviewer: Staff | None, now: datetime) -> None:
    """Mark a quarantined email as reviewed and dropped; it stays stored for the record."""
    _reviewable_thread(session, inbound_email, reviewer)
    inbound_email.outcome = "discarded"
    _reviewed(inbound_email, reviewer, now)
    session.flush()


def _reviewable_thread(session: Session, inbound_email: InboundEmail, reviewer: Staff | None) -> Thread:
    if inbound_email.outcome != "quarantined":
        raise QuarantineError(f"inbound email {inbound_email.id} is {inbound_email.outcome}, not quarantined")
    if reviewer is not None and not (
        reviewer.active and reviewer.is_senior and reviewer.business_id == inbound_email.business_id
    ):
        raise AccessDenied("only senior staff of this business review quarantined email")
    thread = session.get(Thread, inbound_email.thread_id) if inbound_email.thread_id is not None else None
    if thread is None:
        raise QuarantineError(f"inbound email {inbound_email.id} has no thread any more")
    return thread


def _reviewed(inbound_email: InboundEmail, reviewer: Staff | None, now: datetime) -> None:
    inbound_email.reviewed_by_staff_id = reviewer.id if reviewer is not None else None
    inbound_email.reviewed_at = now
