"""Portal fixtures: a business world on a real database, an app, and signing in without a form.

Signing in through the form costs an Argon2 verification; the access matrix signs in by
opening the same session the form opens (`start_session`), and the sign-in tests use the form.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from pawpost.settings import Settings
from portal import create_app
from portal.auth import session_fingerprint
from threads.api_keys import create_api_key
from threads.webhooks import create_endpoint, emit_event
from threads.accounts import start_staff_session
from tests.factories import make_appointment, make_business, make_family, make_staff, thread_of
from threads.models import Attachment, Business, Family, InboundEmail, Staff, Thread
from threads.posting import NewAttachment, post_message
from threads.types import utcnow

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)
SECRET = "portal-tests-secret-key-0123456789"


def portal_settings_for(database_url: str, data_dir: Path, **env: str) -> Settings:
    return Settings.from_env(
        {
            "PAWPOST_DATA_DIR": str(data_dir),
            "PAWPOST_DATABASE_URL": database_url,
            "PAWPOST_QUEUE_URL": "memory://",
            "PAWPOST_REPLY_DOMAIN": "reply.test",
            "PAWPOST_SECRET_KEY": SECRET,
            **env,
        }
    )


def held_email(session: Session, business: Business, thread: Thread, sender: str, text: str) -> InboundEmail:
    raw = (
        f"From: Stranger <{sender}>\r\nTo: reply+{thread.reply_token}@reply.test\r\n"
        f"Subject: About the walk\r\nMessage-ID: <held.{sender}.{thread.id}@elsewhere.test>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()
    email = InboundEmail(
        business_id=business.id,
        thread_id=thread.id,
        envelope_from=sender,
        envelope_to=f"reply+{thread.reply_token}@reply.test",
        sender=sender,
        subject="About the walk",
        message_id_header=f"held.{sender}.{thread.id}@elsewhere.test",
        size=len(raw),
        raw=raw,
        outcome="quarantined",
        reason="sender is not a contact of this family",
    )
    session.add(email)
    session.flush()
    return email


@dataclass
class World:
    """Business A with every role and two families; business B next door with its own."""

    business: Business
    senior: Staff
    senior2: Staff
    admin: Staff
    basic: Staff
    scheduled: Family
    other: Family
    thread: Thread
    other_thread: Thread
    image: Attachment
    other_image: Attachment
    held: InboundEmail
    held2: InboundEmail
    foreign_senior: Staff
    foreign_admin: Staff
    senior2_session_id: int
    appointment_id: int
    foreign_appointment_id: int
    foreign_family: Family
    foreign_thread: Thread
    foreign_image: Attachment
    foreign_held: InboundEmail
    api_key_id: int
    webhook_id: int
    webhook_delivery_id: int


def build_world(session: Session) -> World:
    now = utcnow()
    business = make_business(session)
    senior = make_staff(session, business, role="senior", name="Sam Senior", email="sam@a.test")
    senior2 = make_staff(session, business, role="senior", name="Sky Senior", email="sky@a.test")
    admin = make_staff(session, business, role="admin", name="Ada Admin", email="ada@a.test")
    basic = make_staff(session, business, role="basic", name="Bo Basic", email="bo@a.test")
    scheduled = make_family(session, business, name="Johnson family", contacts=("Emma Johnson", "Liam Johnson"), pets=("Bella",))
    other = make_family(session, business, name="Garcia family", contacts=("Sofia Garcia",), pets=("Luna",))
    appointment = make_appointment(session, scheduled, [basic], start=now - timedelta(minutes=30), hours=1)
    make_appointment(session, other, [senior], start=now - timedelta(minutes=30), hours=1)
    thread, other_thread = thread_of(session, scheduled), thread_of(session, other)
    first = post_message(session, thread, scheduled.contacts[0], "Bella ate well", [NewAttachment("bella.png", "image/png", PNG)], source="email")
    second = post_message(session, other_thread, other.contacts[0], "Luna limps", [NewAttachment("luna.png", "image/png", PNG)], source="email")
    held = held_email(session, business, thread, "stranger@else.test", "Is Bella OK?")
    held2 = held_email(session, business, thread, "spam@else.test", "Buy now")

    foreign = make_business(session, name="Other Biz")
    foreign_senior = make_staff(session, foreign, role="senior", name="Fay Foreign", email="fay@b.test")
    foreign_admin = make_staff(session, foreign, role="admin", name="Flo Foreign", email="flo@b.test")
    senior2_session, _token = start_staff_session(session, senior2, now, user_agent="Sky's phone")
    foreign_family = make_family(session, foreign, name="Bellamy family", contacts=("Bea Bellamy",), pets=("Bella",))
    foreign_thread = thread_of(session, foreign_family)
    foreign_appointment = make_appointment(session, foreign_family, [foreign_senior], start=now + timedelta(days=1), hours=1)
    third = post_message(session, foreign_thread, foreign_family.contacts[0], "Hi B", [NewAttachment("b.png", "image/png", PNG)], source="email")
    foreign_held = held_email(session, foreign, foreign_thread, "x@else.test", "Hello")
    api_key, _secret = create_api_key(session, business.id, name="Booking sync", scopes=["directory:read"], now=now)
    webhook, _webhook_secret = create_endpoint(
        session, business.id, url="https://hooks.example.test/pawpost", events=["webhook.test"], development=False, secret_key=SECRET, now=now
    )
    (webhook_delivery_id,) = emit_event(session, business.id, "webhook.test", {"hello": "world"}, now)
    session.commit()
    return World(
        business=business, senior=senior, senior2=senior2, admin=admin, basic=basic,
        scheduled=scheduled, other=other, thread=thread, other_thread=other_thread,
        image=first.attachments[0], other_image=second.attachments[0], held=held, held2=held2,
        foreign_senior=foreign_senior, foreign_admin=foreign_admin, senior2_session_id=senior2_session.id,
        appointment_id=appointment.id, foreign_appointment_id=foreign_appointment.id,
        foreign_family=foreign_family, foreign_thread=foreign_thread,
        foreign_image=third.attachments[0], foreign_held=foreign_held, api_key_id=api_key.id,
        webhook_id=webhook.id, webhook_delivery_id=webhook_delivery_id,
    )


@pytest.fixture
def portal_settings(database_url: str, tmp_path: Path) -> Settings:
    return portal_settings_for(database_url, tmp_path)


class Clock:
    """A clock the test moves: `create_app(settings, clock=...)` reads it for every request."""

    def __init__(self) -> None:
        self.at = utcnow()

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed_app(database_url: str, tmp_path: Path, clock: Clock) -> Iterator[Flask]:
    """The portal on a clock the test moves, with links to https://portal.test."""
    app = create_app(portal_settings_for(database_url, tmp_path, PAWPOST_PUBLIC_URL="https://portal.test"), clock=clock)
    yield app
    app.extensions["pawpost"].engine.dispose()


@pytest.fixture
def app(portal_settings: Settings) -> Iterator[Flask]:
    app = create_app(portal_settings)
    yield app
    app.extensions["pawpost"].engine.dispose()


@pytest.fixture
def world(db: Session) -> World:
    """Committed and detached: reading the world never opens a transaction (on SQLite a
    transaction holds the write lock, and the app under test would wait for it)."""
    built = build_world(db)
    db.expunge_all()
    return built


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def sign_in_as(app: Flask, client: FlaskClient, staff: Staff) -> None:
    """Open the session the sign-in form opens (skips Argon2; the form has its own tests)."""
    state = app.extensions["pawpost"]
    with app.test_request_context(), state.sessions() as session, session.begin():
        row = session.get(Staff, staff.id)
        assert row is not None
        fingerprint = session_fingerprint(row)
        _, token = start_staff_session(session, row, state.clock())
    with client.session_transaction() as cookie:
        cookie.clear()
        cookie["sid"] = token
        cookie["auth"] = fingerprint
        cookie.permanent = True


def csrf_token(client: FlaskClient, path: str = "/today") -> str:
    """The token a page the client can open carries in its `csrf-token` meta tag."""
    page = client.get(path)
    if page.status_code == 302:
        page = client.get("/signin")
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)[:300]
    return found.group(1)
