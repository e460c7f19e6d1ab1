"""A small business for outbound tests, built at a fixed instant (the fake clock's zero)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import make_appointment, make_business, make_family, make_staff, thread_of
from threads.models import Contact, OutboundEmail, Staff, outbound_email_messages
from threads.posting import post_message

# 11:00 on a Tuesday in New York, the business's zone.
T0 = datetime(2026, 6, 2, 15, 0, tzinfo=UTC)


@dataclass(frozen=True)
class World:
    business_id: int
    family_id: int
    thread_id: int
    walker_id: int  # basic, walking the dog today
    senior_id: int
    admin_id: int
    primary_id: int
    secondary_id: int
    primary_email: str
    secondary_email: str
    walker_email: str


def build_world(sessions: sessionmaker[Session], *, now: datetime = T0) -> World:
    with sessions() as session, session.begin():
        business = make_business(session, name="Happy Tails")
        walker = make_staff(session, business, role="basic", name="Priya Patel")
        senior = make_staff(session, business, role="senior", name="Morgan Lee")
        admin = make_staff(session, business, role="admin", name="Jordan Admin")
        family = make_family(session, business, name="Johnson family", pets=("Bella", "Max"))
        make_appointment(session, family, [walker], start=now - timedelta(hours=1), hours=2, service="walk")
        thread = thread_of(session, family)
        primary, secondary = family.contacts
        return World(
            business_id=business.id,
            family_id=family.id,
            thread_id=thread.id,
            walker_id=walker.id,
            senior_id=senior.id,
            admin_id=admin.id,
            primary_id=primary.id,
            secondary_id=secondary.id,
            primary_email=primary.email or "",
            secondary_email=secondary.email or "",
            walker_email=walker.email,
        )


def post(sessions: sessionmaker[Session], world: World, author: tuple[str, int] | None, body: str, at: datetime) -> int:
    """Post as ("staff", id) / ("contact", id) / None (system) at a given instant; commits."""
    with sessions() as session, session.begin():
        from threads.models import Thread

        thread = session.get(Thread, world.thread_id)
        assert thread is not None
        person = None
        if author is not None:
            person = session.get(Staff if author[0] == "staff" else Contact, author[1])
        return post_message(session, thread, person, body, now=at).id


def outbox_rows(sessions: sessionmaker[Session], kind: str | None = None) -> list[OutboundEmail]:
    with sessions() as session:
        query = select(OutboundEmail).order_by(OutboundEmail.id)
        if kind:
            query = query.where(OutboundEmail.kind == kind)
        return list(session.scalars(query))


def carried(sessions: sessionmaker[Session], outbox_id: int) -> list[int]:
    """The thread messages one outbox email carries."""
    with sessions() as session:
        return sorted(
            session.scalars(
                select(outbound_email_messages.c.message_id).where(outbound_email_messages.c.outbound_email_id == outbox_id)
            )
        )
