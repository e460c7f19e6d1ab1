"""Signing in through the real form (Argon2 and all), for the tests about accounts."""

from __future__ import annotations

import email
import re
from email.message import Message

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer
from werkzeug.test import TestResponse

from tests.portal.conftest import csrf_token
from threads.models import OutboundEmail

NEW_PASSWORD = "a long new password"


def sign_in(client: FlaskClient, email: str, password: str, *, headers: dict[str, str] | None = None, **extra: str) -> TestResponse:
    data = {"email": email, "password": password, "csrf_token": csrf_token(client, "/signin"), **extra}
    return client.post("/signin", data=data, headers=headers or {})


def outbox(db: Session, kind: str) -> list[OutboundEmail]:
    """The queued emails of a kind, loaded whole and detached (SQLite: no transaction left open)."""
    rows = db.scalars(
        select(OutboundEmail).options(undefer(OutboundEmail.raw)).where(OutboundEmail.kind == kind).order_by(OutboundEmail.id)
    ).all()
    db.expunge_all()
    db.rollback()
    return list(rows)


def text_of(row: OutboundEmail) -> str:
    message: Message = email.message_from_bytes(row.raw or b"")
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode("utf-8")
    raise AssertionError("no text part")


def link_path(row: OutboundEmail, kind: str = "invite") -> str:
    """The portal path of the link an account email carries."""
    found = re.search(rf"https://portal\.test(/{kind}/[A-Za-z0-9_-]+)", text_of(row))
    assert found, text_of(row)
    return found.group(1)
