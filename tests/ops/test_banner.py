"""`pawpost up`'s banner prints the sign-ins that work: the demo's own staff, demo passwords only."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from pawpost.settings import Settings
from pawpost.up import banner, ensure_demo
from tests.factories import make_staff
from threads.db import make_engine, make_session_factory
from threads.demo import DEMO_SLUG
from threads.models import Business, Staff
from threads.passwords import hash_password


def test_the_banner_lists_only_demo_staff_whose_demo_password_still_works(tmp_path: Path) -> None:
    settings = Settings.from_env({"PAWPOST_DATA_DIR": str(tmp_path), "PAWPOST_QUEUE_URL": "memory://"}).with_secret_key(development=True)
    first = banner(ensure_demo(settings), "http://127.0.0.1:5000", ("127.0.0.1", 2525), settings)
    assert "priya@happytails.example" in first and "morgan@happytails.example" in first
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session, session.begin():
        business = session.scalars(select(Business).where(Business.slug == DEMO_SLUG)).one()
        make_staff(session, business, role="basic", name="Newbie Hire", email="newbie@happytails.example")
        priya = session.scalars(select(Staff).where(Staff.email == "priya@happytails.example")).one()
        priya.password_hash = hash_password("Priya chose her own password")
    engine.dispose()
    second = banner(ensure_demo(settings), "http://127.0.0.1:5000", ("127.0.0.1", 2525), settings)
    assert "newbie@happytails.example" not in second
    assert "priya@happytails.example" not in second
    assert "morgan@happytails.example" in second and "jordan@happytails.example" in second
