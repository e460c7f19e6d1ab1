"""Announcements: previewed, posted into each family's own thread as the sender, resumable after a crash."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outbound.queue import huey
from portal.announcements import PICK_PAGE
from tests.factories import make_family
from tests.portal.conftest import World, csrf_token, sign_in_as
from threads.announcements import create_announcement, pick_audience, post_pending, progress, unfinished_announcements
from threads.models import Announcement, AnnouncementDelivery, Message, Staff, Thread
from threads.schedule import business_today
from threads.types import utcnow


def _messages_with(db: Session, text: str) -> dict[int, int]:
    """family id → how many messages of the family's thread hold `text`."""
    rows = db.execute(
        select(Thread.family_id, func.count()).join(Message, Message.thread_id == Thread.id)
        .where(Message.body == text).group_by(Thread.family_id)
    ).all()
    return {family_id: count for family_id, count in rows}


def test_a_crash_half_way_neither_skips_nor_doubles_a_family(db: Session, world: World) -> None:
    senior = db.get(Staff, world.senior.id)
    business = senior.business
    extra = [make_family(db, business, name=f"Family {n}", contacts=(f"Pat P{n}",), pets=("Rex",)) for n in range(3)]
    db.commit()
    audience = pick_audience(db, senior, "everyone")
    assert len(audience.family_ids) == 5 and audience.parents == 6  # both Johnsons, Sofia, three Pats
    announcement = create_announcement(db, senior, "Closed tomorrow for the storm", audience, utcnow())
    db.commit()
    aid = announcement.id

    assert post_pending(db, aid, "mail.test", utcnow(), batch=2)  # worker 1 posts two families…
    db.commit()
    assert len(post_pending(db, aid, "mail.test", utcnow(), batch=2)) == 2  # …posts two more, and dies before committing
    db.rollback()
    assert progress(db, aid) == (2, 5) and unfinished_announcements(db) == [aid]

    while post_pending(db, aid, "mail.test", utcnow(), batch=2):  # the restarted worker
        db.commit()
    db.commit()
    counts = _messages_with(db, "Closed tomorrow for the storm")
    assert counts == {f: 1 for f in audience.family_ids}  # every family once, the new ones got threads
    assert progress(db, aid) == (5, 5) and unfinished_announcements(db) == []
    assert db.get(Announcement, aid).finished_at is not None
    authors = set(db.scalars(select(Message.staff_id).where(Message.body == "Closed tomorrow for the storm")))
    assert authors == {world.senior.id}
    assert {e.id for e in extra} <= set(counts)


def test_day_and_hand_picked_audiences(db: Session, world: World) -> None:
    senior = db.get(Staff, world.senior.id)
    today = business_today(senior.business, utcnow())
    assert sorted(pick_audience(db, senior, "day", day=today).family_ids) == sorted([world.scheduled.id, world.other.id])
    picked = pick_audience(db, senior, "families", family_ids=[world.other.id, world.foreign_family.id])
    assert picked.family_ids == [world.other.id] and picked.parents == 1  # never another business's family


def test_preview_then_send_from_the_page(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    sign_in_as(app, client, world.senior)
    form = {"csrf_token": csrf_token(client), "body": "Storm: closed tomorrow", "audience": "families",
            "family_ids": [str(world.scheduled.id), str(world.other.id)]}
    preview = client.post("/announcements/preview", data=form).get_data(as_text=True)
    assert "2 families, 3 parents with an email address" in preview and "Send to 2 families" in preview
    assert db.scalar(select(func.count()).select_from(Announcement)) == 0  # a preview sends nothing
    db.rollback()
    sent = client.post("/announcements", data=form)
    assert sent.status_code == 302
    aid = int(re.search(r"/announcements/(\d+)", sent.headers["Location"]).group(1))  # type: ignore[union-attr]
    assert any(t.name.endswith("post_announcement") and t.args == (aid,) for t in huey.pending())
    assert db.scalar(select(func.count()).select_from(AnnouncementDelivery)) == 2
    db.rollback()
    assert "Posted to 0 of 2 families" in client.get(f"/announcements/{aid}").get_data(as_text=True)
    empty = client.post("/announcements", data={**form, "family_ids": [], "body": "x"})
    assert empty.status_code == 400 and "No family matches" in empty.get_data(as_text=True)


def test_the_hand_picked_list_reaches_every_family_by_search_or_page(
    app: Flask, client: FlaskClient, world: World, db: Session
) -> None:
    senior = db.get(Staff, world.senior.id)
    for n in range(PICK_PAGE + 5):  # more families than one page lists
        make_family(db, senior.business, name=f"Aaron family {n:03d}", contacts=(f"Pat Aaron{n:03d}",), pets=("Rex",))
    last = make_family(db, senior.business, name="Zimmer family", contacts=("Zoe Zimmer",), pets=("Quincy",))
    db.commit()
    sign_in_as(app, client, world.senior)
    token = csrf_token(client)
    first = client.get("/announcements").get_data(as_text=True)
    assert "Aaron family 000" in first and "Zimmer family" not in first and "More families" in first

    found = client.post("/announcements/preview", data={"csrf_token": token, "body": "", "family_q": "quin", "find": "1"})
    page = found.get_data(as_text=True)
    assert found.status_code == 200 and f'value="{last.id}"> Zimmer family' in page and "Aaron family" not in page
    assert 'value="families" checked' in page and "Write the announcement" not in page  # finding is not previewing

    # Zimmer stays picked while the senior pages on and picks one more family.
    picked = {"csrf_token": token, "body": "Closed Monday", "audience": "families", "family_ids": [str(last.id)]}
    paged = client.post("/announcements/preview", data={**picked, "family_page": "1"}).get_data(as_text=True)
    assert f'value="{last.id}" checked> Zimmer family' in paged and "1 picked" in paged
    assert "Aaron family 100" in paged and "Aaron family 000" not in paged and "Previous families" in paged
    other = re.search(r'value="(\d+)"> Aaron family 104', paged).group(1)  # type: ignore[union-attr]
    preview = client.post("/announcements/preview", data={**picked, "family_ids": [str(last.id), other]}).get_data(as_text=True)
    assert "2 families, 2 parents with an email address" in preview
    nobody = client.post("/announcements/preview", data={"csrf_token": token, "family_q": "nobody", "find": "1"})
    assert "No family matches “nobody”" in nobody.get_data(as_text=True)
