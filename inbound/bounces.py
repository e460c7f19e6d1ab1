"""What a delivery report may change: only the recipient of a signed VERP address.

Anyone can send a delivery report naming anyone. Only a report to the envelope sender of
one of our own emails (`bounce+<outbox id>.<mac>@`, the mac checked at RCPT and again
here) says something Pawpost can trust, and only about the one address that email was
sent to: the other failed recipients a report lists are ignored, a report arriving at a
reply address marks nobody, and a transient (4.x.x) failure never marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from inbound.route import bounce_outbox_id
from threads.bounces import mark_bouncing
from threads.models import OutboundEmail

# (address, status, permanent) per failed recipient, as `inbound.ingest` stores them; an
# empty address is the recipient of the reported email, when the report does not name it.
Failure = tuple[str, str, bool]


def signed_outbox(outbox: OutboundEmail | None, rcpt_tos: Sequence[str], secret_key: str) -> OutboundEmail | None:
    """The outbox row only when a recipient of this email is its signed VERP address.

    The routing may also find a row from the report's own text (the reported
    Message-ID), which is enough to file the report in a thread but proves nothing.
    """
    if outbox is None:
        return None
    signed = {bounce_outbox_id(address, secret_key) for address in rcpt_tos}
    return outbox if outbox.id in signed else None


def record_bounce(
    session: Session, outbox: OutboundEmail | None, failures: Sequence[Failure], now: datetime
) -> str:
    """Act on a delivery report; returns the reason to record on the inbound email.

    `outbox` must come from `signed_outbox`. A permanent failure marks that row's
    recipient and the row as bounced: the recipient's own entry when the report has one
    (a 4.x.x there marks nothing, whatever else is listed), else any entry (a forwarded
    copy's failure is still this email's failure). Other addresses are never marked.
    """
    statuses = ", ".join(
        f"{address or 'recipient not named'} {status}{'' if permanent else ' (transient)'}"
        for address, status, permanent in failures
    )
    summary = statuses or "delivery report without failed recipients"
    if outbox is None:
        return f"{summary}; not sent to a signed bounce address, nobody marked"
    # The row's own recipient, when the report names it, decides; otherwise the report
    # is about a copy forwarded on from it (the email went to that one address only).
    own = [f for f in failures if f[0].strip().lower() == outbox.recipient_email.strip().lower()]
    permanent = [status for _, status, is_permanent in (own or failures) if is_permanent]
    if not permanent:
        return f"{summary}; transient, nobody marked" if failures else summary
    outbox.state = "bounced"
    outbox.last_error = f"bounced: {permanent[0]}"[:1000]
    if outbox.recipient_kind == "contact":
        reason = f"{permanent[0]} reported {now:%Y-%m-%d %H:%M} UTC for the email of outbox {outbox.id}"
        mark_bouncing(session, outbox.recipient_id, outbox.recipient_email, reason, now)
    return f"{summary}; marked {outbox.recipient_email}"
