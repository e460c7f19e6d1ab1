"""The demo business: every role, twelve families, and today's schedule, seeded idempotently."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from threads.addresses import reply_address
from threads.directory import normalise_words
from threads.importing import import_directory
from threads.models import Business, Contact, Family, Staff
from threads.passwords import verify_password
from threads.schedule import scheduled_staff

DEMO_SLUG = "happy-tails-demo"
DEMO_TIMEZONE = "America/New_York"
STAFF_DOMAIN = "happytails.example"
FAMILY_DOMAIN = "example.com"

_STAFF = [
    ("staff-admin", "Morgan Reyes", "morgan", "admin"),
    ("staff-senior", "Priya Shah", "priya", "senior"),
    ("staff-basic-1", "Jordan Lee", "jordan", "basic"),
    ("staff-basic-2", "Casey Kim", "casey", "basic"),
]

# (family name, primary, secondary, pets as (name, species, breed))
_FAMILIES = [
    ("Johnson", "Emma", "Liam", [("Bella", "dog", "Labrador Retriever")]),
    ("García", "Sofía", "Mateo", [("Luna", "dog", "Border Collie"), ("Churro", "cat", "Tabby")]),
    ("Nguyen", "Linh", "Minh", [("Max", "dog", "Golden Retriever")]),
    ("O'Brien", "Siobhan", "Declan", [("Biscuit", "dog", "Beagle")]),
    ("Müller", "Zoë", "Lukas", [("Charlie", "dog", "Dachshund")]),
    ("Patel", "Anika", "Rohan", [("Coco", "dog", "Poodle"), ("Mango", "bird", "Cockatiel")]),
    ("Smith", "Olivia", "Noah", [("Daisy", "dog", "French Bulldog")]),
    ("Williams", "Ava", "Ethan", [("Rocky", "dog", "Boxer")]),
    ("Brown", "Mia", "Lucas", [("Milo", "cat", "Maine Coon")]),
    ("Rossi", "Giulia", "Marco", [("Pepper", "dog", "Schnauzer")]),
    ("Kowalski", "Zofia", "Jan", [("Bailey", "dog", "Cocker Spaniel")]),
    ("Okafor", "Chioma", "Emeka", [("Teddy", "dog", "Shih Tzu"), ("Belle", "dog", "Maltese")]),
]

# family index → (staff external ids, service, start hour, hours); the last one is the stay.
_TODAY = {
    0: (["staff-basic-1"], "walk", 9, 1),
    1: (["staff-basic-1"], "walk", 11, 1),
    2: (["staff-basic-1", "staff-basic-2"], "daycare", 8, 9),
    3: (["staff-basic-2"], "grooming", 10, 2),
    4: (["staff-basic-2"], "walk", 13, 1),
    5: (["staff-senior"], "walk", 15, 1),
}
_BOARDING_FAMILY = 6


@dataclass(frozen=True)
class DemoLogin:
    name: str
    email: str
    role: str
    password: str


def demo_password(secret_key: str, email: str) -> str:
    """Stable per deployment (so `pawpost demo` twice prints the same), unguessable without the key."""
    digest = hmac.new(secret_key.encode(), f"demo-password:{email}".encode(), hashlib.sha256).digest()
    return "woof-" + base64.b32encode(digest[:10]).decode().lower()


def demo_directory(today: date, secret_key: str) -> dict[str, Any]:
    """The demo as an import file, with appointments on `today` in New York time."""
    zone = ZoneInfo(DEMO_TIMEZONE)
    staff = []
    for ident, name, local, role in _STAFF:
        email = f"{local}@{STAFF_DOMAIN}"
        staff.append(
            {"id": ident, "name": name, "email": email, "role": role, "password": demo_password(secret_key, email)}
        )
    families = []
    for index, (surname, first, second, pets) in enumerate(_FAMILIES):
        slug = _ascii(surname)
        families.append(
            {
                "id": f"family-{index + 1:02d}",
                "name": f"{surname} family",
                "contacts": [
                    {"id": "primary", "name": f"{first} {surname}", "email": f"{_ascii(first)}.{slug}@{FAMILY_DOMAIN}", "primary": True},
                    {"id": "secondary", "name": f"{second} {surname}", "email": f"{_ascii(second)}.{slug}@{FAMILY_DOMAIN}", "primary": False},
                ],
                "pets": [{"id": _ascii(p[0]), "name": p[0], "species": p[1], "breed": p[2]} for p in pets],
            }
        )

    def at(day: date, hour: int) -> datetime:
        return datetime.combine(day, time(hour), tzinfo=zone)

    appointments = []
    for index, (assigned, service, hour, hours) in _TODAY.items():
        start = at(today, hour)
        appointments.append(
            {
                "id": f"demo-{today.isoformat()}-{index + 1:02d}",
                "family": families[index]["id"],
                "staff": assigned,
                "service": service,
                "start": start.isoformat(),
                "end": (start + timedelta(hours=hours)).isoformat(),
            }
        )
    appointments.append(
        {
            "id": f"demo-{today.isoformat()}-boarding",
            "family": families[_BOARDING_FAMILY]["id"],
            "staff": ["staff-basic-1"],
            "service": "boarding",
            "start": at(today - timedelta(days=1), 17).isoformat(),
            "end": at(today + timedelta(days=1), 10).isoformat(),
        }
    )
    return {
        "business": {
            "id": DEMO_SLUG,
            "name": "Happy Tails Pet Care",
            "timezone": DEMO_TIMEZONE,
            "sender_name": "Happy Tails",
        },
        "staff": staff,
        "families": families,
        "appointments": appointments,
    }


def seed_demo(session: Session, *, now: datetime, secret_key: str, mail_domain: str) -> int:
    """Create or refresh the demo business; returns its id. The caller commits."""
    today = now.astimezone(ZoneInfo(DEMO_TIMEZONE)).date()
    report = import_directory(session, demo_directory(today, secret_key), mail_domain=mail_domain)
    assert report.business_id is not None
    return report.business_id


def describe_demo(session: Session, business_id: int, *, today: date, secret_key: str, reply_domain: str) -> dict[str, Any]:
    """The demo's logins, families and reply addresses, as `pawpost demo --json` prints them.

    Only the demo's own staff whose password is still the demo's: anyone added later (an
    invitation, `pawpost staff add`) or who chose a password has no demo password to print.
    """
    business = session.get(Business, business_id)
    assert business is not None
    demo_ids = [ident for ident, *_ in _STAFF]
    staff = [
        s
        for s in session.scalars(
            select(Staff).where(Staff.business_id == business_id, Staff.external_id.in_(demo_ids)).order_by(Staff.id)
        )
        if verify_password(s.password_hash, demo_password(secret_key, s.email))
    ]
    families = session.scalars(
        select(Family)
        .options(selectinload(Family.contacts).selectinload(Contact.addresses), selectinload(Family.pets), selectinload(Family.thread))
        .where(Family.business_id == business_id)
        .order_by(Family.external_id)
    ).all()
    return {
        "business": {
            "id": business.id,
            "name": business.name,
            "sender_name": business.sender_name,
            "timezone": business.timezone,
        },
        "staff": [
            {"name": s.name, "email": s.email, "role": s.role, "password": demo_password(secret_key, s.email)}
            for s in staff
        ],
        "families": [
            {
                "id": f.id,
                "name": f.name,
                "thread_id": f.thread.id if f.thread else None,
                "reply_address": reply_address(f.thread, reply_domain) if f.thread else None,
                "contacts": [{"name": c.name, "email": c.email, "primary": c.is_primary} for c in f.contacts],
                "pets": [{"name": p.name, "species": p.species, "breed": p.breed} for p in f.pets],
                "scheduled_staff_today": [s.email for s in scheduled_staff(session, f, today)],
            }
            for f in families
        ],
    }


def _ascii(text: str) -> str:
    return "".join(normalise_words(text))
