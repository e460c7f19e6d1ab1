"""A deactivated family's reply address is refused at RCPT with a plain reason; reactivated, it works."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.inbound_server.conftest import World
from tests.inbound_server.mail import reply_email, send
from threads.families import set_family_active
from threads.models import Family


def test_a_deactivated_familys_reply_address_answers_550_5_1_1(smtp, world: World, engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        set_family_active(session, session.get(Family, world.family_id), False, "reply.test")
    raw = reply_email(world.primary_email, world.reply_to)
    assert send(*smtp, world.primary_email, world.reply_to, raw) == (550, "5.1.1 No such recipient here")
    with Session(engine) as session, session.begin():
        set_family_active(session, session.get(Family, world.family_id), True, "reply.test")
    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250
