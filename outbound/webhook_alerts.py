"""The admins' email when a webhook endpoint is disabled (410 Gone, or 3 days of failures).

Written in the transaction that disables the endpoint, as outbox rows like every other email
(one way out, one retry policy, one log), and sent after the commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from outbound.accounts import staff_envelope
from outbound.links import webhook_endpoint_url
from outbound.outbox import NewEmail, add_emails
from outbound.render import EndpointDisabledContent, local_time, render_webhook_disabled
from pawpost.settings import Settings
from threads.models import Business, Staff, WebhookEndpoint


def queue_endpoint_disabled(session: Session, settings: Settings, endpoint: WebhookEndpoint, now: datetime) -> list[int]:
    """One email per active admin of the endpoint's business; the outbox ids. The caller commits."""
    business = session.get(Business, endpoint.business_id)
    assert business is not None
    admins = session.scalars(
        select(Staff).where(Staff.business_id == business.id, Staff.role == "admin", Staff.active.is_(True)).order_by(Staff.id)
    ).all()
    subject = f"Webhook endpoint disabled: {endpoint.url[:80]}"
    emails = []
    for admin in admins:
        content = EndpointDisabledContent(
            business_name=business.name,
            recipient_name=admin.name,
            endpoint_url=endpoint.url,
            reason=endpoint.disabled_reason or "it kept failing",
            when=local_time(now, business.timezone),
            link=webhook_endpoint_url(settings, endpoint.id),
        )
        emails.append(
            NewEmail(
                business_id=business.id,
                thread_id=None,
                kind="webhook_disabled",
                # Once per endpoint, admin and moment it was disabled: a retried task never doubles it.
                dedupe_key=f"webhook_disabled:{endpoint.id}:{admin.id}:{int(now.timestamp())}",
                recipient_kind="staff",
                recipient_id=admin.id,
                recipient_email=admin.email,
                subject=subject,
                message_ids=(),
                render=lambda message_id, admin=admin, content=content: render_webhook_disabled(
                    staff_envelope(settings, admin, subject, message_id, now), content
                ),
            )
        )
    return add_emails(session, settings, emails, now)
