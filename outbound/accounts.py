"""Invitation and password-reset emails: outbox rows like every other email Pawpost sends.

The portal and `pawpost staff invite` write the row in the transaction that creates the
link, then push delivery after the commit (`send_soon`); a lost push is repaired by the
sweep, which sends every due `queued` row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from email.message import Message
from datetime import datetime

from sqlalchemy.orm import Session

from pawpost.settings import Settings
from outbound.links import invite_url, password_reset_url
from outbound.outbox import NewEmail, add_emails
from outbound.render import AccountContent, Envelope, local_time, render_invitation, render_password_reset
from threads.models import Staff, StaffToken

logger = logging.getLogger(__name__)


def staff_envelope(settings: Settings, staff: Staff, subject: str, message_id: str, now: datetime) -> Envelope:
    """The headers of an email to a staff member about their account or business (no thread)."""
    return Envelope(
        from_name=staff.business.sender_name,
        from_address=settings.notifications_address,
        to_name=staff.name,
        to_address=staff.email,
        reply_to="",
        message_id=message_id,
        root_message_id="",
        subject=subject,
        thread_index="",
        date=now,
    )


def queue_invitation(
    session: Session, settings: Settings, token_row: StaffToken, token: str, now: datetime, *, invited_by: str = ""
) -> int:
    """Write the invitation email for this token; its outbox id. The caller commits."""
    staff = token_row.staff
    subject = f"Join {staff.business.name} on Pawpost"
    content = AccountContent(
        business_name=staff.business.name,
        recipient_name=staff.name,
        link=invite_url(settings, token),
        expires=local_time(token_row.expires_at, staff.business.timezone),
        role=staff.role,
        invited_by=invited_by,
    )
    return _queue(
        session, settings, token_row, "invite", subject,
        lambda message_id: render_invitation(staff_envelope(settings, staff, subject, message_id, now), content), now,
    )


def queue_password_reset(session: Session, settings: Settings, token_row: StaffToken, token: str, now: datetime) -> int:
    """Write the password-reset email for this token; its outbox id. The caller commits."""
    staff = token_row.staff
    subject = "Reset your Pawpost password"
    content = AccountContent(
        business_name=staff.business.name,
        recipient_name=staff.name,
        link=password_reset_url(settings, token),
        expires=local_time(token_row.expires_at, staff.business.timezone),
    )
    return _queue(
        session, settings, token_row, "password_reset", subject,
        lambda message_id: render_password_reset(staff_envelope(settings, staff, subject, message_id, now), content), now,
    )


def _queue(
    session: Session,
    settings: Settings,
    token_row: StaffToken,
    kind: str,
    subject: str,
    render: Callable[[str], Message],
    now: datetime,
) -> int:
    email = NewEmail(
        business_id=token_row.business_id,
        thread_id=None,
        kind=kind,
        dedupe_key=f"{kind}:{token_row.id}",
        recipient_kind="staff",
        recipient_id=token_row.staff_id,
        recipient_email=token_row.staff.email,
        subject=subject,
        message_ids=(),
        render=render,
    )
    return add_emails(session, settings, [email], now)[0]


def send_soon(outbox_ids: Sequence[int]) -> None:
    """Push delivery after the commit. Never raises: the sweep sends what a lost push left."""
    if not outbox_ids:
        return
    try:
        from outbound.tasks import deliver_emails

        deliver_emails(list(outbox_ids))
    except Exception:  # any queue fault: the row is committed, the sweep will send it
        logger.exception("could not enqueue account email(s) %s; the sweep will send them", list(outbox_ids))
