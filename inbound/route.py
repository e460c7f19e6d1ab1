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

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from inbound.parse import ParsedEmail
from outbound.ids import parse_verp
from outbound.links import UNSUBSCRIBE_PREFIX, parse_unsubscribe_address
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


RecipientKind = Literal["thread", "bounce", "open", "unsubscribe"]


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
    contact_id: int | None = None  # `unsubscribe`: the contact whose emails to pause


@dataclass(frozen=True)
class RecipientLookup:
    """RCPT addresses sorted by what each still needs from the database.

    The SMTP server looks up the reply tokens and outbox ids of every RCPT waiting at
    that moment with one query each; `answers` turns the rows found into one result per
    address: its `Recipient`, or the `RoutingError` the SMTP edge answers with.
    """

    addresses: tuple[str, ...]
    settled: Mapping[int, Recipient | RoutingError]
    tokens: Mapping[int, str]
    outbox_ids: Mapping[int, int]

    def answers(
        self, threads: Mapping[str, tuple[int, int]], outboxes: Mapping[int, tuple[int | None, int]]
    ) -> list[Recipient | RoutingError]:
        """`threads`: token → (thread id, business id) of the active threads whose current
        token it is; `outboxes`: outbox id → (thread id, business id)."""
        results: list[Recipient | RoutingError] = []
        for position, address in enumerate(self.addresses):
            if position in self.settled:
                results.append(self.settled[position])
            elif position in self.tokens:
                token = self.tokens[position]
                thread = threads.get(token)
                # Unknown, rotated away (RetiredReplyToken) or inactive: refused.
                results.append(
                    Recipient("thread", address, thread_id=thread[0], token=token, business_id=thread[1])
                    if thread is not None
                    else UnknownRecipient(address)
                )
            else:
                outbox_id = self.outbox_ids[position]
                outbox = outboxes.get(outbox_id)
                results.append(
                    Recipient("bounce", address, thread_id=outbox[0], outbound_email_id=outbox_id, business_id=outbox[1])
                    if outbox is not None
                    else UnknownRecipient(address)
                )
        return results


def lookup_recipients(addresses: Sequence[str], reply_domain: str, secret_key: str) -> RecipientLookup:
    """Classify `RCPT TO` addresses without the database: foreign, tokenless, token, VERP.

    A token must still be the current token of an active thread (the same rule as
    `threads.addresses.thread_for_token`) and a VERP address must carry the right mac
    and name an outbox row; the caller reads both for a whole batch of addresses at once.
    A `bounce+` address with a wrong or missing mac is refused here, before any query.
    """
    clean = tuple(address.strip().strip("<>") for address in addresses)
    settled: dict[int, Recipient | RoutingError] = {}
    tokens: dict[int, str] = {}
    outbox_ids: dict[int, int] = {}
    for position, address in enumerate(clean):
        if not is_our_domain(address, reply_domain):
            settled[position] = ForeignDomain(address)
            continue
        local = address.rpartition("@")[0].lower()
        if local.startswith(UNSUBSCRIBE_PREFIX):
            # The List-Unsubscribe mailto of a digest (RFC 2369): its mac names the contact.
            contact_id = parse_unsubscribe_address(address, reply_domain, secret_key)
            settled[position] = (
                UnknownRecipient(address) if contact_id is None else Recipient("unsubscribe", address, contact_id=contact_id)
            )
        elif local.startswith(BOUNCE_PREFIX):
            outbox_id = bounce_outbox_id(address, secret_key)
            if outbox_id is None:
                settled[position] = UnknownRecipient(address)
            else:
                outbox_ids[position] = outbox_id
        elif local.startswith(LOCAL_PREFIX):
            token = parse_reply_address(address, reply_domain)
            if token:
                tokens[position] = token.lower()
            else:
                settled[position] = UnknownRecipient(address)
        else:
            settled[position] = Recipient("open", address)
    return RecipientLookup(clean, settled, tokens, outbox_ids)


def bounce_outbox_id(address: str, secret_key: str) -> int | None:
    """The outbox row a VERP address `bounce+<id>.<mac>@…` names, when its mac is right.

    Without the database; the domain is the caller's check (`is_our_domain`).
    """
    return parse_verp(address, None, secret_key)


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
    still finds its family; but only ids from after the thread's last address rotation
    (`threads.addresses.rotate_reply_token`), so a leaked email cannot keep posting.
    """
    ids = [i.strip().strip("<>") for i in message_ids if i and i.strip().strip("<>")]
    ids = list(dict.fromkeys(i for i in ids if len(i) <= 255))[:50]
    if not ids:
        return None
    found: dict[str, int] = {}

    def since_rotation(moment):  # type: ignore[no-untyped-def]
        return or_(Thread.rotated_at.is_(None), moment > Thread.rotated_at)

    queries = (
        select(Thread.root_message_id, Thread.id).where(Thread.root_message_id.in_(ids)),
        select(OutboundEmail.message_id_header, OutboundEmail.thread_id)
        .join(Thread, Thread.id == OutboundEmail.thread_id)
        .where(OutboundEmail.message_id_header.in_(ids), since_rotation(OutboundEmail.created_at)),
        select(Message.email_message_id, Message.thread_id)
        .join(Thread, Thread.id == Message.thread_id)
        .where(Message.email_message_id.in_(ids), since_rotation(Message.created_at)),
        select(InboundEmail.message_id_header, InboundEmail.thread_id)
        .join(Thread, Thread.id == InboundEmail.thread_id)
        .where(InboundEmail.message_id_header.in_(ids), since_rotation(InboundEmail.received_at)),
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


def find_author(session: Session, thread: Thread, sender: str | None, now: datetime, contact: Contact | None) -> AuthorCheck:
    """The contact of this family or the staff member allowed on this thread now.

    `contact`: what `contact_for_address(session, thread.family, sender)` found (the
    email ingest reads it beside its other reads, in one round trip).
    """
    if not sender:
        return AuthorCheck(None, "the email has no From address")
    family = thread.family
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
_HEADER_FROM = re.compile(r"\bheader\.from\s*=\s*\"?([^\s;\"()]+)", re.IGNORECASE)


def trusted_results(headers: Mapping[str, Sequence[str]], trusted_authserv_id: str | None) -> list[str]:
    """The `Authentication-Results` values written by our own receiving host (RFC 8601).

    Anyone can write such a header into a message; only those whose authserv-id is the
    trusted host count (our edge MTA removes forged copies of its own and prepends the real one).
    """
    if not trusted_authserv_id:
        return []
    trusted = trusted_authserv_id.strip().lower()
    found = []
    for value in headers.get("authentication-results", ()):
        match = _AUTHSERV.match(value)
        if match is not None and match.group(1).lower() == trusted:
            found.append(value)
    return found


def dmarc_failed(headers: Mapping[str, Sequence[str]], trusted_authserv_id: str | None) -> bool:
    """Whether our own receiving host recorded `dmarc=fail`."""
    results = trusted_results(headers, trusted_authserv_id)
    return any(result.lower() == "fail" for value in results for result in _DMARC.findall(value))


def untrusted_sender(parsed: ParsedEmail, trusted_authserv_id: str | None) -> str | None:
    """Why this email's From cannot be taken as its author (a quarantine reason), or None.

    The From must name exactly one mailbox (`inbound.sender`); with a trusted
    `Authentication-Results`, DMARC must not have failed and the domain it checked
    (`header.from`) must be the From address's domain: a pass for attacker.example says
    nothing about a From on example.com.
    """
    if parsed.sender_problem:
        return parsed.sender_problem
    results = trusted_results(parsed.headers, trusted_authserv_id)
    if not results:
        return None
    if dmarc_failed(parsed.headers, trusted_authserv_id):
        return f"DMARC failed at {trusted_authserv_id}"
    from_domain = _ascii_domain((parsed.sender_address or "").rpartition("@")[2])
    checked = {_ascii_domain(value.rpartition("@")[2]) for result in results for value in _HEADER_FROM.findall(result)}
    if not checked:
        return f"the Authentication-Results of {trusted_authserv_id} name no header.from"
    if checked != {from_domain}:
        return f"{trusted_authserv_id} checked header.from={', '.join(sorted(checked))}, not the From domain {from_domain}"
    return None


def _ascii_domain(domain: str) -> str:
    """A domain as DMARC reports it: lowercase, no trailing dot, IDNA (`xn--`) form."""
    domain = domain.strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:  # not a valid IDN: compared as written
        return domain


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
