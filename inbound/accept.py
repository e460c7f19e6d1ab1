"""The SMTP server's half of the pipeline: the cheap check at DATA and the row it stores.

Following Zulip's email gateway, nothing before `250` parses the body, classifies or
posts: the server reads the header block only (`parse_headers`), decides the thread the
recipient already named at RCPT, and stores the raw bytes as an `InboundEmail` with
outcome `received`. The queue worker does the rest (`inbound.ingest`).

The one database read here is for a recipient on our domain without a token: its
In-Reply-To/References must match something Pawpost knows, or the sender gets
`550 5.1.1` now rather than a bounce later.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from inbound.ingest import email_dedupe_id, parse_for_storage, reported_outbox, storable
from inbound.parse import HeaderSummary, UnparseableEmail
from inbound.route import NoThreadMatched, Recipient, primary_recipient, thread_for_references


def needs_lookup(recipients: Sequence[Recipient]) -> bool:
    """True when no recipient named a thread or an outbox row: the headers must route it."""
    return primary_recipient(recipients).kind == "open"


def received_row(
    envelope_from: str,
    recipients: Sequence[Recipient],
    raw: bytes,
    now: datetime,
    headers: HeaderSummary,
    thread_id: int | None = None,
    business_id: int | None = None,
) -> dict[str, Any]:
    """The column values of the `received` row (every row has the same keys: one INSERT)."""
    primary = primary_recipient(recipients)
    if primary.kind != "open":
        thread_id, business_id = primary.thread_id, primary.business_id
    message_id = storable(headers.message_id) if headers.message_id else None
    return {
        "business_id": business_id,
        "thread_id": thread_id,
        "received_at": now,
        "envelope_from": storable(envelope_from)[:320],
        "envelope_to": ", ".join(storable(r.address) for r in recipients),
        "message_id_header": email_dedupe_id(message_id, raw),
        "size": len(raw),
        "raw": raw,
        "outcome": "received",
    }


def route_tokenless(session: Session, headers: HeaderSummary, raw: bytes) -> tuple[int | None, int]:
    """(thread id, business id) for a token-less recipient; raise `NoThreadMatched`.

    A delivery report names the email it is about inside its body, so for
    `multipart/report` alone the body is parsed here (rare, and never a parent's reply).
    """
    thread = thread_for_references(session, [headers.in_reply_to or "", *reversed(headers.references)])
    if thread is not None:
        return thread.id, thread.business_id
    if headers.content_type == "multipart/report":
        try:
            reported = parse_for_storage(raw).reported_message_id
        except UnparseableEmail:
            reported = None
        outbox = reported_outbox(session, reported) if reported else None
        if outbox is not None:
            return outbox.thread_id, outbox.business_id
    raise NoThreadMatched("no known In-Reply-To or References")
