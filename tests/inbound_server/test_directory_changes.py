"""Directory changes made from the portal hold for email at once: deactivated families, new appointments."""

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


def test_an_appointment_added_from_the_portal_lets_the_walker_answer_by_email_at_once(smtp, world: World, engine: Engine) -> None:
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from tests.inbound_server import queries
    from threads.appointments import AppointmentForm, create_appointment
    from threads.models import Business
    from threads.types import utcnow

    before = reply_email(world.basic_email, world.reply_to, "On my way!", quote=None, message_id="<before@walker.test>")
    assert send(*smtp, world.basic_email, world.reply_to, before)[0] == 250
    assert queries.messages(engine, world.thread_id) == []  # not scheduled: held, not posted
    with Session(engine) as session, session.begin():
        business = session.get(Business, world.business_id)
        assert business is not None
        local = utcnow().astimezone(ZoneInfo(business.timezone))
        start = local.replace(hour=0, minute=0) if local.hour == 0 else local - timedelta(hours=1)
        end = local + timedelta(minutes=30)
        create_appointment(session, business, AppointmentForm(
            str(world.family_id), [str(world.basic_id)], "walk",
            start.date().isoformat(), start.strftime("%H:%M"), end.date().isoformat(), end.strftime("%H:%M"),
        ))
    after = reply_email(world.basic_email, world.reply_to, "Walk done, all good!", quote=None, message_id="<after@walker.test>")
    assert send(*smtp, world.basic_email, world.reply_to, after)[0] == 250
    [message] = queries.messages(engine, world.thread_id)
    assert message.staff_id == world.basic_id and message.body == "Walk done, all good!"
