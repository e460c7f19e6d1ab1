"""Small typed factories: each test builds exactly the rows it talks about."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy.orm import Session

from threads.directory import ensure_thread, refresh_search_terms
from threads.models import Appointment, Business, Contact, ContactAddress, Family, Pet, Staff, Thread
from threads.passwords import hash_password

MAIL_DOMAIN = "reply.test"
PASSWORD = "correct horse battery"
_counter = itertools.count(1)


@lru_cache(maxsize=1)
def password_hash() -> str:
    """Argon2 is slow on purpose; hash the shared test password once per run."""
    return hash_password(PASSWORD)


def make_business(session: Session, *, name: str = "Happy Tails", timezone: str = "America/New_York") -> Business:
    n = next(_counter)
    business = Business(slug=f"biz-{n}", name=name, timezone=timezone, sender_name=name)
    session.add(business)
    session.flush()
    return business


def make_staff(
    session: Session, business: Business, *, role: str = "senior", name: str | None = None, email: str | None = None, active: bool = True
) -> Staff:
    n = next(_counter)
    staff = Staff(
        business_id=business.id,
        external_id=f"s{n}",
        name=name or f"Staff {n}",
        email=(email or f"staff{n}@biz.test").lower(),
        role=role,
        password_hash=password_hash(),
        active=active,
    )
    session.add(staff)
    session.flush()
    return staff


def make_family(
    session: Session,
    business: Business,
    *,
    name: str | None = None,
    contacts: tuple[str, ...] = ("Emma Johnson", "Liam Johnson"),
    pets: tuple[str, ...] = ("Bella",),
) -> Family:
    """A family with contacts (the first primary), pets, search words and its thread."""
    n = next(_counter)
    family = Family(business_id=business.id, external_id=f"f{n}", name=name or f"Family {n}", contacts=[], pets=[])
    for index, contact_name in enumerate(contacts):
        local = contact_name.lower().replace(" ", ".")
        family.contacts.append(
            Contact(
                name=contact_name,
                is_primary=index == 0,
                addresses=[ContactAddress(email=f"{local}.{n}@parents.test", verified=True, bouncing=False)],
            )
        )
    for pet_name in pets:
        family.pets.append(Pet(name=pet_name, species="dog"))
    session.add(family)
    session.flush()
    refresh_search_terms(session, family)
    ensure_thread(session, family, MAIL_DOMAIN)
    return family


def thread_of(session: Session, family: Family) -> Thread:
    return ensure_thread(session, family, MAIL_DOMAIN)


def make_appointment(
    session: Session,
    family: Family,
    staff: list[Staff],
    *,
    start: datetime,
    hours: float = 1,
    status: str = "scheduled",
    service: str = "walk",
) -> Appointment:
    appointment = Appointment(
        business_id=family.business_id,
        family_id=family.id,
        external_id=f"a{next(_counter)}",
        starts_at=start,
        ends_at=start + timedelta(hours=hours),
        status=status,
        service=service,
        staff=list(staff),
    )
    session.add(appointment)
    session.flush()
    return appointment
