"""A real Pawpost SMTP server on an ephemeral port, over a real SQLite file or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from inbound.server import running_smtp_server
from outbound.queue import configure_queue
from pawpost.settings import Settings
from tests.factories import MAIL_DOMAIN, make_business, make_family, make_staff
from threads.addresses import reply_address
from threads.models import Thread


def make_settings(database_url: str, data_dir: Path, **env: str) -> Settings:
    values = {
        "PAWPOST_DATA_DIR": str(data_dir),
        "PAWPOST_DATABASE_URL": database_url,
        "PAWPOST_QUEUE_URL": "memory://",
        "PAWPOST_REPLY_DOMAIN": MAIL_DOMAIN,
        "PAWPOST_SMTP_LISTEN": "127.0.0.1:0",
    }
    values.update(env)
    return Settings.from_env(values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    settings = make_settings(database_url, tmp_path)
    configure_queue(settings)
    return settings


@pytest.fixture
def smtp(settings: Settings) -> Iterator[tuple[str, int]]:
    with running_smtp_server(settings) as address:
        yield address


@dataclass(frozen=True)
class World:
    """One business with a senior and a basic staff member and one two-parent family."""

    business_id: int
    thread_id: int
    family_id: int
    reply_to: str
    primary_id: int
    primary_email: str
    secondary_id: int
    secondary_email: str
    senior_id: int
    senior_email: str
    basic_id: int
    basic_email: str
    root_message_id: str


@pytest.fixture
def world(engine: Engine) -> World:
    with Session(engine) as session, session.begin():
        business = make_business(session)
        senior = make_staff(session, business, role="senior", name="Morgan Lee")
        basic = make_staff(session, business, role="basic", name="Casey Park")
        family = make_family(session, business, name="Johnson", contacts=("Emma Johnson", "Liam Johnson"))
        thread = session.query(Thread).filter_by(family_id=family.id).one()
        primary, secondary = family.contacts
        return World(
            business_id=business.id,
            thread_id=thread.id,
            family_id=family.id,
            reply_to=reply_address(thread, MAIL_DOMAIN),
            primary_id=primary.id,
            primary_email=primary.email or "",
            secondary_id=secondary.id,
            secondary_email=secondary.email or "",
            senior_id=senior.id,
            senior_email=senior.email,
            basic_id=basic.id,
            basic_email=basic.email,
            root_message_id=thread.root_message_id,
        )
