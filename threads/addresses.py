"""Reply addresses: `reply+<token>@<reply domain>`, one unguessable token per thread."""

from __future__ import annotations

import base64
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from threads.models import RetiredReplyToken, Thread

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


def rotate_reply_token(session: Session, thread: Thread) -> str:
    """Give the thread a fresh token and retire the old one (e.g. after a leak)."""
    session.add(RetiredReplyToken(token=thread.reply_token, thread_id=thread.id))
    thread.reply_token = new_reply_token()
    session.flush()
    return thread.reply_token
