"""Business settings (admins) and rotating a thread's reply address after a confirmation."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.portal.conftest import World, csrf_token, sign_in_as
from threads.models import Business, RetiredReplyToken, Thread

FORM = {"name": "Happy Tails West", "sender_name": "Happy Tails", "timezone": "America/Los_Angeles", "notify_delay_seconds": "60", "escalate_after_minutes": ""}


def test_admins_change_the_business_and_each_refused_field_shows_its_problem(app: Flask, world: World, db: Session) -> None:
    db.rollback()
    admin = app.test_client()
    sign_in_as(app, admin, world.admin)
    page = admin.get("/settings").get_data(as_text=True)
    assert "empty: 180" in page and "empty: 30" in page  # the deployment's defaults are shown
    bad = admin.post("/settings", data={"csrf_token": csrf_token(admin, "/settings"), **FORM, "timezone": "Mars/Olympus", "notify_delay_seconds": "-5"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert 'id="timezone-error"' in text and "is not an IANA time zone" in text and 'id="notify_delay_seconds-error"' in text
    assert db.scalar(select(Business.timezone).where(Business.id == world.business.id)) == "America/New_York"
    db.rollback()
    assert admin.post("/settings", data={"csrf_token": csrf_token(admin, "/settings"), **FORM}).status_code == 302
    business = db.get(Business, world.business.id)
    assert business is not None
    assert (business.name, business.timezone, business.notify_delay_seconds, business.escalate_after_minutes) == (
        "Happy Tails West", "America/Los_Angeles", 60, None,
    )
    db.rollback()
    assert "Happy Tails West" in admin.get("/today").get_data(as_text=True)


def test_rotating_a_reply_address_says_what_stops_working_then_retires_it(app: Flask, world: World, db: Session) -> None:
    old = db.scalar(select(Thread.reply_token).where(Thread.id == world.thread.id))
    db.rollback()
    admin = app.test_client()
    sign_in_as(app, admin, world.admin)
    assert "Reply address…" in admin.get(f"/threads/{world.thread.id}").get_data(as_text=True)
    confirm = admin.get(f"/threads/{world.thread.id}/reply-address").get_data(as_text=True)
    assert f"reply+{old}@reply.test" in confirm and "What stops working" in confirm and "550 5.1.1" in confirm
    done = admin.post(f"/threads/{world.thread.id}/reply-address", data={"csrf_token": csrf_token(admin, "/settings")})
    assert done.status_code == 302
    new = db.scalar(select(Thread.reply_token).where(Thread.id == world.thread.id))
    retired = db.scalar(select(RetiredReplyToken.thread_id).where(RetiredReplyToken.token == old))
    db.rollback()
    assert new != old and retired == world.thread.id
    senior = app.test_client()
    sign_in_as(app, senior, world.senior)
    assert "Reply address…" not in senior.get(f"/threads/{world.thread.id}").get_data(as_text=True)
