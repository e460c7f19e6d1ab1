"""Reply addresses: `reply+<token>@<reply domain>`, one unguessable token per thread."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from threads.models import RetiredReplyToken, Thread
from threads.types import utcnow

LOCAL_PREFIX = "reply+"
TOKEN_BYTES = 15  # 120 bits, above the 80 the design asks for


def new_reply_token() -> str:
    """A random lowercase token: mail systems do not keep the case of the local part."""
    return base64.b32encode(secrets.token_bytes(TOKEN_BYTES)).decode("ascii").lower()


def make_reply_address(token: str, reply_domain: str) -> str:
    return f"{LOCAL_PREFIX}{token}@{reply_domain}"


def reply_address(thread: Thread, reply_domain: str) -> str:
    return make_reply_address(thread.reply_token, reply_domain)


def parse_reply_address(address: str, reply_domain: str) -> str | None:
    """The token of a reply address on our domain, or None (case-insensitive).

    Returns None for foreign domains and for our domain without a `+token`; the caller
    tells those apart with `is_our_domain`.
    """
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    if domain != reply_domain.lower() or not local.startswith(LOCAL_PREFIX):
        return None
    token = local[len(LOCAL_PREFIX) :]
    return token if token.isalnum() else None


def is_our_domain(address: str, reply_domain: str) -> bool:
    return address.strip().strip("<>").lower().rpartition("@")[2] == reply_domain.lower()


def thread_for_token(session: Session, token: str) -> Thread | None:
    """The active thread with this token; rotated-away tokens find nothing."""
    return session.scalar(select(Thread).where(Thread.reply_token == token.lower(), Thread.active))


def rotate_reply_token(session: Session, thread: Thread, now: datetime | None = None) -> str:
    """Give the thread a fresh token and retire the old one (e.g. after a leak).

    A leaked address is more than its token: mail to any address on the reply domain
    that names the thread's root Message-ID, or any Message-ID sent or received before,
    in its References would still find the thread (tokenless routing). So the rotation
    also gives the thread a new root id, which every email from now on refers to, and
    records its time: tokenless routing matches only ids newer than it. Mail already
    accepted keeps the thread it was stored with, so none of it is lost.
    """
    session.add(RetiredReplyToken(token=thread.reply_token, thread_id=thread.id))
    thread.reply_token = new_reply_token()
    domain = thread.root_message_id.rpartition("@")[2]
    thread.root_message_id = f"thread.{secrets.token_hex(12)}@{domain}"
    thread.rotated_at = now or utcnow()
    session.flush()
    return thread.reply_token
