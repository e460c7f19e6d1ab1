"""Routing: which thread an email belongs to, and whether its sender may post there.

The recipient is checked once, cheaply, at `RCPT` (so a wrong address is refused before
the sender uploads anything); the thread it names is stored with the raw email at DATA,
and the queue worker routes from that (a token rotated after the `250` does not lose mail
Pawpost already accepted). The sender check follows the design's rule: a verified address of a
contact of *that* family, or a staff member allowed on the thread right now; everyone
else is quarantined, never posted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from threads.access import can_access_thread
from threads.addresses import LOCAL_PREFIX, is_our_domain, parse_reply_address
from threads.directory import contact_for_address, find_staff_by_email
from threads.errors import PawpostError
from threads.models import Contact, InboundEmail, Message, OutboundEmail, Staff, Thread

BOUNCE_PREFIX = "bounce+"


class RoutingError(PawpostError):
    """The email cannot be delivered to any thread; the SMTP edge maps each subclass."""


class ForeignDomain(RoutingError):
    """The recipient is not on the reply domain: Pawpost never relays."""


class UnknownRecipient(RoutingError):
    """Our domain, but no active thread or outbox row answers to this address."""


class NoThreadMatched(RoutingError):
    """A tokenless recipient whose In-Reply-To/References match nothing Pawpost knows."""


RecipientKind = Literal["thread", "bounce", "open"]


@dataclass(frozen=True)
class Recipient:
    """What one envelope recipient points at.

    `open` is our domain without a token: the thread is looked up from the email's
    In-Reply-To/References once the content is there.
    """

    kind: RecipientKind
    address: str
    thread_id: int | None = None
    outbound_email_id: int | None = None
    token: str | None = None
    business_id: int | None = None


def check_recipient(session: Session, address: str, reply_domain: str) -> Recipient:
    """Classify one `RCPT TO` address, raising `ForeignDomain` or `UnknownRecipient`."""
    [result] = check_recipients(session, [address], reply_domain)
    if isinstance(result, RoutingError):
        raise result
    return result


def check_recipients(
    session: Session | Connection, addresses: Sequence[str], reply_domain: str
) -> list[Recipient | RoutingError]:
    """`check_recipient` for many addresses at once: one query answers every reply token.

    Each address gets its `Recipient` or the `RoutingError` it would have raised, in
    order. The queries are plain Core on the tables, so the SMTP server's checker runs
    them on a bare connection without an ORM session.
    """
    results: list[Recipient | RoutingError | None] = [None] * len(addresses)
    by_token: dict[str, list[int]] = {}
    for position, raw_address in enumerate(addresses):
        address = raw_address.strip().strip("<>")
        if not is_our_domain(address, reply_domain):
            results[position] = ForeignDomain(address)
            continue
        local = address.rpartition("@")[0].lower()
        if local.startswith(BOUNCE_PREFIX):
            results[position] = _bounce_recipient(session, address)
        elif local.startswith(LOCAL_PREFIX):
            token = parse_reply_address(address, reply_domain)
            if token:
                by_token.setdefault(token.lower(), []).append(position)
            else:
                results[position] = UnknownRecipient(address)
        else:
            results[position] = Recipient("open", address)
    if by_token:
        # The same rule as `threads.addresses.thread_for_token` (the current token of an
        # active thread), read as three columns: this runs for every RCPT, before any upload.
        threads = Thread.__table__.c
        found = {
            row.reply_token: row
            for row in session.execute(
                select(threads.reply_token, threads.id, threads.business_id).where(
                    threads.reply_token.in_(sorted(by_token)), threads.active
                )
            )
        }
        for token, positions in by_token.items():
            for position in positions:
                address = addresses[position].strip().strip("<>")
                thread = found.get(token)
                # Unknown, rotated away (RetiredReplyToken) or inactive: refused.
                results[position] = (
                    Recipient("thread", address, thread_id=thread.id, token=token, business_id=thread.business_id)
                    if thread is not None
                    else UnknownRecipient(address)
                )
    return [r if r is not None else UnknownRecipient(addresses[i]) for i, r in enumerate(results)]


def _bounce_recipient(session: Session | Connection, address: str) -> Recipient | RoutingError:
    outbox_id = bounce_outbox_id(address)
    outboxes = OutboundEmail.__table__.c
    outbox = (
        session.execute(select(outboxes.id, outboxes.thread_id, outboxes.business_id).where(outboxes.id == outbox_id)).first()
        if outbox_id is not None
        else None
    )
    if outbox is None:
        return UnknownRecipient(address)
    return Recipient("bounce", address, thread_id=outbox.thread_id, outbound_email_id=outbox.id, business_id=outbox.business_id)


def bounce_outbox_id(address: str) -> int | None:
    """The outbox row a VERP address `bounce+<id>@…` names, without asking the database."""
    local = address.strip().strip("<>").rpartition("@")[0].lower()
    number = local[len(BOUNCE_PREFIX) :] if local.startswith(BOUNCE_PREFIX) else ""
    return int(number) if number.isdigit() and len(number) < 12 else None


def primary_recipient(recipients: Sequence[Recipient]) -> Recipient:
    """The recipient that decides the thread: a token first, then a VERP address, else open.

    One email makes one post: a message addressed to two threads at once is posted in
    the first, which is what a person writing to one family expects.
    """
    for kind in ("thread", "bounce"):
        for recipient in recipients:
            if recipient.kind == kind:
                return recipient
    return recipients[0]


def thread_for_references(session: Session, message_ids: Sequence[str]) -> Thread | None:
    """The active thread that one of these Message-IDs belongs to, the first id winning.

    Matched against everything Pawpost sent (thread roots, the outbox) or received
    (posted messages, stored inbound emails), so a reply whose `+token` was stripped
    still finds its family.
    """
    ids = [i.strip().strip("<>") for i in message_ids if i and i.strip().strip("<>")]
    ids = list(dict.fromkeys(i for i in ids if len(i) <= 255))[:50]
    if not ids:
        return None
    found: dict[str, int] = {}
    queries = (
        select(Thread.root_message_id, Thread.id).where(Thread.root_message_id.in_(ids)),
        select(OutboundEmail.message_id_header, OutboundEmail.thread_id).where(OutboundEmail.message_id_header.in_(ids)),
        select(Message.email_message_id, Message.thread_id).where(Message.email_message_id.in_(ids)),
        select(InboundEmail.message_id_header, InboundEmail.thread_id).where(
            InboundEmail.message_id_header.in_(ids), InboundEmail.thread_id.is_not(None)
        ),
    )
    for query in queries:
        for message_id, thread_id in session.execute(query):
            if thread_id is not None:
                found.setdefault(message_id, thread_id)
    for message_id in ids:
        if message_id in found:
            thread = session.get(Thread, found[message_id])
            if thread is not None and thread.active:
                return thread
    return None


@dataclass(frozen=True)
class AuthorCheck:
    """Who may post this email, or why it goes to quarantine instead."""

    author: Staff | Contact | None
    reason: str | None = None


def find_author(session: Session, thread: Thread, sender: str | None, now: datetime) -> AuthorCheck:
    """The contact of this family or the staff member allowed on this thread now."""
    if not sender:
        return AuthorCheck(None, "the email has no From address")
    family = thread.family
    contact = contact_for_address(session, family, sender)
    if contact is not None:
        return AuthorCheck(contact)
    staff = find_staff_by_email(session, thread.business_id, sender)
    if staff is not None:
        if can_access_thread(session, staff, thread, now):
            return AuthorCheck(staff)
        if not staff.active:
            return AuthorCheck(None, f"{sender} belongs to an inactive staff member")
        return AuthorCheck(None, f"{sender} is staff not scheduled with this family today")
    if contact_for_address(session, family, sender, verified_only=False) is not None:
        return AuthorCheck(None, f"{sender} is an unverified address of this family")
    return AuthorCheck(None, f"{sender} is not a contact of this family or a staff member allowed on it")


_AUTHSERV = re.compile(r"^\s*(?:\([^)]*\)\s*)*([^\s;()]+)")
_DMARC = re.compile(r"(?:^|;)\s*dmarc\s*=\s*([a-z]+)", re.IGNORECASE)


def dmarc_failed(headers: Mapping[str, Sequence[str]], trusted_authserv_id: str | None) -> bool:
    """Whether our own receiving host recorded `dmarc=fail` (RFC 8601).

    Only headers whose authserv-id is the trusted host count: anyone can write an
    `Authentication-Results` header into a message, but our edge MTA removes forged
    copies of its own and prepends the real one.
    """
    if not trusted_authserv_id:
        return False
    trusted = trusted_authserv_id.strip().lower()
    for value in headers.get("authentication-results", ()):
        match = _AUTHSERV.match(value)
        if match is None or match.group(1).lower() != trusted:
            continue
        if any(result.lower() == "fail" for result in _DMARC.findall(value)):
            return True
    return False


def answered_up_to(session: Session, thread: Thread, in_reply_to: str | None) -> int | None:
    """The newest message of the Pawpost email this one answers (In-Reply-To), if any."""
    if not in_reply_to:
        return None
    return session.scalar(
        select(OutboundEmail.up_to_message_id).where(
            OutboundEmail.message_id_header == in_reply_to.strip().strip("<>"),
            OutboundEmail.thread_id == thread.id,
        )
    )
