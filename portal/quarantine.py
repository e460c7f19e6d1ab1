"""Held emails: senior staff read what a stranger wrote, then release it or discard it.

What is shown is what would be posted: the visible text as inbound extracts it. Releasing
posts it as one of the family's contacts (and may keep the sender's address as that
contact's alias), or, when the sender is staff of the business, as that staff member
(offered first and pre-selected; no alias is ever offered for a staff address). The post
notifies like any other, after the commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload, undefer

from inbound.parse import UnparseableEmail, parse_email
from inbound.quarantine import QuarantineError, discard, release, sender_staff
from inbound.reply_text import extract_reply
from outbound import live
from outbound.notify import message_posted
from portal.auth import current_staff, requires
from portal.runtime import db, now
from threads.errors import StaffAddress, UnknownThread
from threads.models import Contact, Family, InboundEmail, Staff, Thread

logger = logging.getLogger(__name__)

bp = Blueprint("quarantine", __name__)

LIST_LIMIT = 100
TEXT_LIMIT = 20_000


@dataclass(frozen=True)
class HeldEmail:
    id: int
    received_at: datetime
    sender: str
    subject: str
    text: str
    family: Family | None
    contacts: tuple[Contact, ...]
    reason: str | None
    staff_sender: Staff | None = None  # the sender is this staff member of the business


def _read(raw: bytes) -> tuple[str, str | None]:
    """(the visible text, the From address) of a held email."""
    try:
        parsed = parse_email(raw)
    except UnparseableEmail:
        return "(this email has no readable text)", None
    reply = extract_reply(parsed.text, parsed.html, sender=parsed.sender_name or parsed.sender_address)
    text = reply.visible or reply.quote_stripped or ""
    return text[:TEXT_LIMIT] or "(no text)", parsed.sender_address


def _held_view(email: InboundEmail) -> HeldEmail:
    text, sender_address = _read(email.raw or b"")
    return HeldEmail(
        id=email.id,
        received_at=email.received_at,
        sender=email.sender or email.envelope_from or "(unknown sender)",
        subject=email.subject or "(no subject)",
        text=text,
        family=email.thread.family if email.thread else None,
        contacts=tuple(email.thread.family.contacts) if email.thread else (),
        reason=email.reason,
        staff_sender=sender_staff(db(), email, sender_address) if email.thread else None,
    )


def _held(staff: Staff, email_id: int) -> InboundEmail:
    """A quarantined email of my business; anything else is unknown (404)."""
    email = db().scalar(
        select(InboundEmail).where(
            InboundEmail.id == email_id,
            InboundEmail.business_id == staff.business_id,
            InboundEmail.outcome == "quarantined",
        )
    )
    if email is None:
        raise UnknownThread(f"no held email {email_id} in business {staff.business_id}")
    return email


@bp.get("/quarantine")
@requires("senior")
def index() -> str:
    staff = current_staff()
    emails = db().scalars(
        select(InboundEmail)
        .options(
            undefer(InboundEmail.raw),
            selectinload(InboundEmail.thread).selectinload(Thread.family).selectinload(Family.contacts),
        )
        .where(InboundEmail.business_id == staff.business_id, InboundEmail.outcome == "quarantined")
        .order_by(InboundEmail.received_at.desc(), InboundEmail.id.desc())
        .limit(LIST_LIMIT)
    ).all()
    return render_template("quarantine.html", held=[_held_view(e) for e in emails])


@bp.post("/quarantine/<int:email_id>/release")
@requires("senior")
def release_email(email_id: int) -> Any:
    staff = current_staff()
    email = _held(staff, email_id)
    author = _chosen_author(email)
    if author is None:
        flash("Choose one of this family's contacts (or the staff member who sent it) to release the email as.", "error")
        return redirect(url_for("quarantine.index"))
    add_alias = request.form.get("add_alias") == "1"
    try:
        message = release(db(), email, author, add_alias=add_alias, reviewer=staff, now=now())
    except (QuarantineError, StaffAddress) as error:
        db().rollback()
        flash(f"Not released: {error}.", "error")
        return redirect(url_for("quarantine.index"))
    db().commit()
    logger.info("staff %s released held email %s as %s %s", staff.id, email.id, author.person.kind, author.id)
    message_posted(message.id)
    live.quarantine_changed(email.id)
    flash(f"Posted in the {email.thread.family.name} thread as {author.name}.", "ok")
    return redirect(url_for("threads.show", thread_id=message.thread_id, _anchor=f"m{message.id}"))


def _chosen_author(email: InboundEmail) -> Contact | Staff | None:
    """The form's choice: `author=contact:<id>` (or `contact_id=<id>`) or `author=staff:<id>`."""
    if email.thread is None:
        return None
    kind, _, number = (request.form.get("author") or "").partition(":")
    if not kind and request.form.get("contact_id"):
        kind, number = "contact", request.form.get("contact_id", "")
    if not number.isdigit():
        return None
    if kind == "staff":
        # Only the sender's own staff identity; `release` checks the address again.
        return db().scalar(select(Staff).where(Staff.id == int(number), Staff.business_id == email.business_id))
    if kind == "contact":
        return db().scalar(select(Contact).where(Contact.id == int(number), Contact.family_id == email.thread.family_id, Contact.removed_at.is_(None)))
    return None


@bp.post("/quarantine/<int:email_id>/discard")
@requires("senior")
def discard_email(email_id: int) -> Any:
    staff = current_staff()
    email = _held(staff, email_id)
    try:
        discard(db(), email, reviewer=staff, now=now())
    except QuarantineError as error:
        db().rollback()
        flash(f"Not discarded: {error}.", "error")
        return redirect(url_for("quarantine.index"))
    db().commit()
    logger.info("staff %s discarded held email %s", staff.id, email.id)
    live.quarantine_changed(email.id)
    flash("Discarded.", "ok")
    return redirect(url_for("quarantine.index"))
