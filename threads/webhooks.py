"""Webhooks: endpoints, events written as deliveries in the event's transaction, Standard
Webhooks signatures, and what each attempt's outcome means for the next one.

Sending is outbound's (outbound/webhooks.py); everything here decides. A delivery is retried
with exponential backoff for 24 hours; a 2xx ends it; a 410 disables its endpoint; an
endpoint that has failed for 3 days without a success is disabled.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import Session

from threads.errors import FieldProblems
from threads.models import WEBHOOK_EVENTS, Appointment, Contact, Family, InboundEmail, Message, Thread, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from threads.sealing import seal

# Standard Webhooks' suggested schedule, after the first try: ~27 h of retries in all, so
# a delivery keeps trying through a receiver's whole day of downtime.
RETRY_DELAYS = (
    timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=5), timedelta(hours=10), timedelta(hours=10),
)
DISABLE_AFTER = timedelta(days=3)
EXCERPT = 500


class EndpointProblems(FieldProblems):
    """A webhook endpoint was refused; `problems` maps url/events to what is wrong."""


def validate_endpoint_fields(url: str, events: Iterable[str], *, development: bool) -> dict[str, str]:
    """The URL's shape (https; http too in development) and known events. Where the URL
    points is checked when sending, because DNS answers change."""
    problems: dict[str, str] = {}
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        parts, port = None, None
    allowed = ("https", "http") if development else ("https",)
    if parts is None or parts.scheme not in allowed or not parts.hostname:
        problems["url"] = "use an https:// URL" + (" (or http:// while developing)" if development else "")
    elif parts.username or parts.password or len(url) > 2000 or (port is not None and not 0 < port < 65536):
        problems["url"] = "use a plain https:// URL without a user or password, at most 2000 characters"
    chosen = list(events)
    unknown = sorted(set(chosen) - set(WEBHOOK_EVENTS))
    if unknown:
        problems["events"] = f"unknown event(s): {', '.join(unknown)}; choose from {', '.join(WEBHOOK_EVENTS)}"
    elif not chosen:
        problems["events"] = "choose at least one event"
    return problems


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_endpoint(
    session: Session, business_id: int, *, url: str, events: Iterable[str], development: bool, secret_key: str, now: datetime
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret, to show the admin once: only its sealed form
    (under `secret_key`, the deployment's PAWPOST_SECRET_KEY) is stored."""
    chosen = list(dict.fromkeys(events))
    problems = validate_endpoint_fields(url, chosen, development=development)
    if problems:
        raise EndpointProblems(problems)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        business_id=business_id, url=url.strip(), events=" ".join(e for e in WEBHOOK_EVENTS if e in chosen),
        sealed_secret=seal(secret_key, secret), active=True, created_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def emit_event(session: Session, business_id: int, event_type: str, data: dict[str, Any], now: datetime, *, endpoint_ids: Iterable[int] | None = None) -> list[int]:
    """One pending delivery per active endpoint of the business that wants `event_type` (or
    per one of `endpoint_ids`, whatever they chose: a test event), in the caller's transaction
    (so an event exists exactly when its cause committed). The ids to push after the commit."""
    if endpoint_ids is None:
        wanted = wanted_endpoints(session, business_id, event_type)
    else:
        query = select(WebhookEndpoint.id).where(
            WebhookEndpoint.business_id == business_id, WebhookEndpoint.active.is_(True), WebhookEndpoint.id.in_(list(endpoint_ids))
        )
        wanted = list(session.scalars(query))
    return _deliveries(session, wanted, event_type, data, now)


def wanted_endpoints(session: Session, business_id: int, event_type: str) -> list[int]:
    """The active endpoints of the business that chose `event_type`: asked before building an
    event's data, which most businesses (no endpoint) never need."""
    rows = session.execute(_endpoints_statement(), {"business_id": business_id})
    return [endpoint_id for endpoint_id, events in rows if event_type in events.split()]


@cache
def _endpoints_statement() -> Select[tuple[int, str]]:
    """Built once: every posted message asks it."""
    return select(WebhookEndpoint.id, WebhookEndpoint.events).where(
        WebhookEndpoint.business_id == bindparam("business_id"), WebhookEndpoint.active.is_(True)
    )


def _deliveries(session: Session, endpoint_ids: list[int], event_type: str, data: dict[str, Any], now: datetime) -> list[int]:
    if not endpoint_ids:
        return []
    deliveries = []
    for endpoint_id in endpoint_ids:
        event_id = "msg_" + secrets.token_hex(12)
        payload = json.dumps({"type": event_type, "timestamp": now.isoformat(), "data": data}, separators=(",", ":"), ensure_ascii=False, default=str)
        deliveries.append(WebhookDelivery(endpoint_id=endpoint_id, event_id=event_id, event_type=event_type, payload=payload, state="pending", attempts=0, next_attempt_at=now, created_at=now))
    session.add_all(deliveries)
    session.flush()
    return [d.id for d in deliveries]


def with_links(payload: str, link: Callable[[int], str]) -> str:
    """The payload with a signed `url` beside each attachment id (links are made by the sender,
    which holds the deployment's secret key)."""
    event = json.loads(payload)
    attachments = event.get("data", {}).get("attachments")
    if not attachments:
        return payload
    for item in attachments:
        item["url"] = link(int(item["id"]))
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def message_created(session: Session, message: Message, now: datetime) -> list[int]:
    """`message.created`: the thread, the family's external id, who wrote it, the text and its
    attachments (links added when sent)."""
    thread = session.get(Thread, message.thread_id)
    assert thread is not None
    wanted = wanted_endpoints(session, thread.business_id, "message.created")
    if not wanted:
        return []
    family = session.get(Family, thread.family_id)
    data = {
        "message_id": message.id,
        "thread_id": thread.id,
        "family_id": family.external_id if family is not None else None,
        "author": {"kind": message.author_type, "name": message.author_name},
        "text": message.body,
        "source": message.source,
        # A staff-only note (rule 8): the business's own software may keep it; it must never
        # show it to parents.
        "internal": bool(message.internal),
        "attachments": [{"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size} for a in message.attachments],
    }
    return _deliveries(session, wanted, "message.created", data, now)


def email_bounced(session: Session, contact_id: int, email: str, reason: str, now: datetime) -> list[int]:
    """`email.bounced`: a contact's address was flagged as bouncing."""
    found = session.execute(
        select(Contact, Family).join(Family, Family.id == Contact.family_id).where(Contact.id == contact_id)
    ).first()
    if found is None:
        return []
    contact, family = found
    data = {"family_id": family.external_id, "contact_id": contact.external_id, "contact_name": contact.name, "email": email, "reason": reason[:500]}
    return emit_event(session, family.business_id, "email.bounced", data, now)


def email_quarantined(session: Session, inbound: InboundEmail, now: datetime) -> list[int]:
    """`email.quarantined`: an email to the business was held for review (not its text)."""
    if inbound.business_id is None:
        return []
    data = {"inbound_email_id": inbound.id, "sender": inbound.sender or inbound.envelope_from, "subject": inbound.subject, "reason": inbound.reason}
    return emit_event(session, inbound.business_id, "email.quarantined", data, now)


def appointment_changed(session: Session, appointment: Appointment, change: str, now: datetime) -> list[int]:
    """`appointment.changed`: an appointment was created, updated or cancelled in the portal
    (changes the business's software made itself are not echoed back to it)."""
    family = session.get(Family, appointment.family_id)
    data = {
        "change": change,
        "appointment_id": appointment.external_id,
        "pawpost_id": appointment.id,
        "family_id": family.external_id if family is not None else None,
        "staff": [{"id": s.external_id, "name": s.name} for s in appointment.staff],
        "service": appointment.service,
        "starts_at": appointment.starts_at.isoformat(),
        "ends_at": appointment.ends_at.isoformat(),
        "status": appointment.status,
        "source": "portal",
    }
    return emit_event(session, appointment.business_id, "appointment.changed", data, now)


def sign(secret: str, event_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header: `v1,` and base64(HMAC-SHA256(key, "id.timestamp.body")),
    the key being the secret's base64 part."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{event_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


@dataclass(frozen=True)
class Outcome:
    """What one attempt heard: a status code (None: no answer) and the first words."""

    status_code: int | None
    latency_ms: int
    excerpt: str


@dataclass(frozen=True)
class Decision:
    """What follows an attempt: a retry after `retry_in` (None: none), and whether this
    attempt disabled the endpoint (its admins must hear of it)."""

    retry_in: timedelta | None
    disabled: bool = False


def record_attempt(session: Session, delivery: WebhookDelivery, outcome: Outcome, now: datetime) -> Decision:
    """Log the attempt and decide: done, disabled, or retry after a delay."""
    delivery.attempts += 1
    session.add(WebhookAttempt(delivery_id=delivery.id, at=now, status_code=outcome.status_code, latency_ms=outcome.latency_ms, excerpt=outcome.excerpt[:EXCERPT]))
    endpoint = delivery.endpoint
    if outcome.status_code is not None and 200 <= outcome.status_code < 300:
        delivery.state, delivery.finished_at, delivery.next_attempt_at = "succeeded", now, None
        endpoint.failing_since = None
        return Decision(None)
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    disabled = False
    if outcome.status_code == 410:
        disabled = disable_endpoint(session, endpoint, "the receiver answered 410 Gone")
    elif now - endpoint.failing_since >= DISABLE_AFTER:
        disabled = disable_endpoint(session, endpoint, "every delivery failed for 3 days")
    if not endpoint.active or delivery.attempts > len(RETRY_DELAYS):
        delivery.state, delivery.finished_at, delivery.next_attempt_at = "failed", now, None
        return Decision(None, disabled)
    delay = RETRY_DELAYS[delivery.attempts - 1]
    delivery.next_attempt_at = now + delay
    return Decision(delay)


def disable_endpoint(session: Session, endpoint: WebhookEndpoint, reason: str) -> bool:
    """Stop sending to the endpoint; its pending deliveries end as failed. True when this call
    disabled it: of two workers failing at once, exactly one (a conditional UPDATE) did."""
    changed = session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.active.is_(True))
        .values(active=False, disabled_reason=reason[:300])
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(endpoint, ["active", "disabled_reason"])
    return bool(changed)


def resend(session: Session, delivery: WebhookDelivery, now: datetime) -> WebhookDelivery:
    """Send a delivery again (same event id, so a receiver that has it can drop it)."""
    delivery.state, delivery.finished_at, delivery.next_attempt_at = "pending", None, now
    session.flush()
    return delivery


def due_deliveries(session: Session, now: datetime, limit: int = 500) -> list[int]:
    """Pending deliveries whose time has come (the periodic sweep's repair of lost pushes)."""
    query = (
        select(WebhookDelivery.id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now, WebhookEndpoint.active.is_(True))
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return list(session.scalars(query))
