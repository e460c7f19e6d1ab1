"""Identifiers Pawpost puts on the emails it sends, and how to read them back.

- `Message-ID: <pawpost.<outbox id>.<random>@<mail domain>>`: inbound finds the outbox row
  of an email a reply or a bounce refers to (`outbox_id_from_message_id`).
- Envelope sender `bounce+<outbox id>.<mac>@<reply domain>` (VERP): a bounce arriving later
  names the outbox row, hence the recipient, without parsing the bounce's body
  (`parse_verp`). The mac (an HMAC of the id under the secret key) makes the address
  unforgeable: outbox ids are sequential, and a report to a guessed `bounce+14@` would
  otherwise silence whoever row 14 was sent to.
- `Thread-Index`: Outlook groups conversations by it, not by `References`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from datetime import UTC, datetime

MESSAGE_ID_PREFIX = "pawpost"
VERP_PREFIX = "bounce+"
VERP_MAC_BYTES = 10  # 80 bits, 16 base32 characters
_VERP_LOCAL = re.compile(rf"^{re.escape(VERP_PREFIX)}(\d{{1,11}})\.([a-z2-7]{{16}})$")
_MESSAGE_ID = re.compile(rf"^<?{MESSAGE_ID_PREFIX}\.(\d+)\.[0-9a-f]+@([^>\s]+)>?$", re.IGNORECASE)
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def new_token() -> str:
    return secrets.token_hex(8)


def outbox_message_id(outbox_id: int, token: str, mail_domain: str) -> str:
    """The Message-ID (without brackets, as stored) of one outbox row's email."""
    return f"{MESSAGE_ID_PREFIX}.{outbox_id}.{token}@{mail_domain}"


def placeholder_message_id(token: str, mail_domain: str) -> str:
    """A unique stand-in until the row has its id (the column is NOT NULL and unique)."""
    return f"{MESSAGE_ID_PREFIX}-pending.{token}@{mail_domain}"


def outbox_id_from_message_id(value: str, mail_domain: str) -> int | None:
    """The outbox row id named by a Message-ID Pawpost generated, else None."""
    match = _MESSAGE_ID.match(value.strip())
    if match is None or match.group(2).lower() != mail_domain.lower():
        return None
    return int(match.group(1))


def verp_mac(outbox_id: int, secret_key: str) -> str:
    """The unforgeable part of a VERP address: lowercase base32, since local parts lose case."""
    digest = hmac.new(secret_key.encode(), f"pawpost-verp:{outbox_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:VERP_MAC_BYTES]).decode("ascii").lower()


def verp_sender(outbox_id: int, reply_domain: str, secret_key: str) -> str:
    """The envelope sender of one outbox row's email: `bounce+<id>.<mac>@<reply domain>`."""
    return f"{VERP_PREFIX}{outbox_id}.{verp_mac(outbox_id, secret_key)}@{reply_domain}"


def parse_verp(address: str, reply_domain: str | None, secret_key: str) -> int | None:
    """The outbox id of a VERP address whose mac is right, else None.

    `reply_domain=None` skips the domain check (the caller has done it). The old form
    without a mac (`bounce+<id>@`, sent before the mac existed) is refused like a forgery:
    nothing tells the two apart.
    """
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    if reply_domain is not None and domain != reply_domain.lower():
        return None
    match = _VERP_LOCAL.match(local)
    if match is None:
        return None
    outbox_id = int(match.group(1))
    return outbox_id if hmac.compare_digest(match.group(2), verp_mac(outbox_id, secret_key)) else None


def _filetime(moment: datetime) -> int:
    """100-nanosecond ticks since 1601, the clock Outlook's Thread-Index uses."""
    delta = moment.astimezone(UTC) - _FILETIME_EPOCH
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def thread_index(root_message_id: str, thread_created_at: datetime, sent_at: datetime) -> str:
    """An Outlook `Thread-Index`: the thread's 22-byte header plus one 5-byte child block.

    The header (6 bytes of the thread's creation FILETIME and a 16-byte GUID derived from
    the thread's root Message-ID) is identical on every email of a thread, which is what
    Outlook groups on; the child block orders the emails inside it.
    """
    created = _filetime(thread_created_at)
    header = struct.pack(">Q", created)[:6] + hashlib.md5(root_message_id.encode(), usedforsecurity=False).digest()
    delta = max(_filetime(sent_at) - (created >> 16 << 16), 0)
    if delta < 1 << 49:
        block = (delta >> 18) & 0x7FFFFFFF
    else:
        block = (1 << 31) | ((delta >> 23) & 0x7FFFFFFF)
    child = struct.pack(">I", block) + bytes([secrets.randbits(8)])
    return base64.b64encode(header + child).decode("ascii")
