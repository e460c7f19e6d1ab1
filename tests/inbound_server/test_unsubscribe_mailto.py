"""Issue 14, point 3: the List-Unsubscribe `mailto:` of a digest, through the real SMTP server.

`unsubscribe+<contact>.<mac>@<reply domain>` pauses that contact's emails (rule 7) and stores
nothing; a wrong mac is refused at RCPT; a reply sent to both addresses still posts.
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from outbound.links import unsubscribe_address
from pawpost.settings import Settings
from tests.factories import MAIL_DOMAIN
from tests.inbound_server import queries
from tests.inbound_server.conftest import World
from tests.inbound_server.mail import send
from threads.models import Contact

RAW = b"From: Liam <liam@example.test>\r\nTo: unsubscribe\r\nSubject: unsubscribe\r\nMessage-ID: <u1@example.test>\r\n\r\nunsubscribe\r\n"


def _choice(engine: Engine, contact_id: int) -> str:
    with Session(engine) as session:
        return session.scalar(select(Contact.email_choice).where(Contact.id == contact_id)) or ""


def test_mail_to_the_unsubscribe_address_pauses_that_contact_only(
    settings: Settings, smtp: tuple[str, int], world: World, engine: Engine
) -> None:
    address = unsubscribe_address(settings.secret_key, world.secondary_id, MAIL_DOMAIN)
    assert send(*smtp, "liam@example.test", address, RAW)[0] == 250
    assert _choice(engine, world.secondary_id) == "paused"
    assert _choice(engine, world.primary_id) == "each"
    assert queries.inbound(engine) == []  # nothing stored, nothing posted

    forged = unsubscribe_address("another-key", world.primary_id, MAIL_DOMAIN)
    assert send(*smtp, "x@example.test", forged, RAW)[0] == 550
    assert send(*smtp, "x@example.test", f"unsubscribe+{world.primary_id}@{MAIL_DOMAIN}", RAW)[0] == 550
    assert _choice(engine, world.primary_id) == "each"


def test_a_reply_copied_to_the_unsubscribe_address_still_posts(
    settings: Settings, smtp: tuple[str, int], world: World, engine: Engine
) -> None:
    address = unsubscribe_address(settings.secret_key, world.primary_id, MAIL_DOMAIN)
    raw = RAW.replace(b"To: unsubscribe", f"To: {world.reply_to}".encode()).replace(b"<u1@", b"<u2@")
    raw = raw.replace(b"From: Liam <liam@example.test>", f"From: Emma <{world.primary_email}>".encode())
    assert send(*smtp, world.primary_email, [address, world.reply_to], raw)[0] == 250
    assert _choice(engine, world.primary_id) == "paused"
    assert [row.thread_id for row in queries.inbound(engine)] == [world.thread_id]
