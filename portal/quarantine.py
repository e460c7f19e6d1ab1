"""Held emails: senior staff read what a stranger wrote, then release it as a contact or discard it.

What is shown is what would be posted: the visible text as inbound extracts it. Releasing
posts it (and may keep the sender's address as the contact's alias); the post notifies like
any other, after the commit.
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
from inbound.quarantine import QuarantineError, discard, release
from inbound.reply_text import extract_reply
from outbound import live
from outbound.notify import message_posted
from portal.auth import current_staff, requires
from portal.runtime import db, now
from threads.errors import UnknownThread
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


def _visible_text(raw: bytes) -> str:
    try:
        parsed = parse_email(raw)
    except UnparseableEmail:
        return "(this email has no readable text)"
    reply = extract_reply(parsed.text, parsed.html, sender=parsed.sender_name or parsed.sender_address)
    text = reply.visible or reply.quote_stripped or ""
    return text[:TEXT_LIMIT] or "(no text)"


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
    held = [
        HeldEmail(
            id=e.id,
            received_at=e.received_at,
            sender=e.sender or e.envelope_from or "(unknown sender)",
            subject=e.subject or "(no subject)",
            text=_visible_text(e.raw or b""),
            family=e.thread.family if e.thread else None,
            contacts=tuple(e.thread.family.contacts) if e.thread else (),
            reason=e.reason,
        )
        for e in emails
    ]
    return render_template("quarantine.html", held=held)


@bp.post("/quarantine/<int:email_id>/release")
@requires("senior")
def release_email(email_id: int) -> Any:
    staff = current_staff()
    email = _held(staff, email_id)
    contact_id = request.form.get("contact_id", type=int)
    contact = None
    if email.thread is not None and contact_id is not None:
        contact = db().scalar(select(Contact).where(Contact.id == contact_id, Contact.family_id == email.thread.family_id))
    if contact is None:
        flash("Choose one of this family's contacts to release the email as.", "error")
        return redirect(url_for("quarantine.index"))
    try:
        message = release(db(), email, contact, add_alias=request.form.get("add_alias") == "1", reviewer=staff, now=now())
    except QuarantineError as error:
        db().rollback()
        flash(f"Not released: {error}.", "error")
        return redirect(url_for("quarantine.index"))
    db().commit()
    logger.info("staff %s released held email %s as contact %s", staff.id, email.id, contact.id)
    message_posted(message.id)
    live.quarantine_changed(email.id)
    flash(f"Posted in the {email.thread.family.name} thread as {contact.name}.", "ok")
    return redirect(url_for("threads.show", thread_id=message.thread_id, _anchor=f"m{message.id}"))


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
