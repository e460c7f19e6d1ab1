"""Issue 14 in Debian's Chromium at 390×844: a parent opens the link of a real digest, sees the
photos, replies with a photo, and staff see it in the portal; an expired link and a link after
a reply-address rotation show the friendly page. Screenshots go to docs/screenshots/ when
PAWPOST_SCREENSHOTS is set."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import undefer

from outbound import digests
from portal import create_app
from portal.live_server import background_portal
from tests.browser import launched_chromium
from tests.factories import PASSWORD
from tests.portal.auth_helpers import text_of
from tests.portal.conftest import PNG, Clock, World, build_world, portal_settings_for
from threads.addresses import rotate_reply_token
from threads.db import make_engine, make_session_factory
from threads.models import Contact, Message, OutboundEmail, Staff, Thread
from threads.posting import NewAttachment, post_message

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # `launched_chromium` reports it
    pass

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@dataclass
class Live:
    base_url: str
    world: World
    database_url: str
    clock: Clock
    settings: object

    def sessions(self):  # type: ignore[no-untyped-def]
        return make_session_factory(make_engine(self.database_url))()


@pytest.fixture(scope="module")
def live(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("parent-live")
    shutil.copy(sqlite_template, data_dir / "pawpost.sqlite3")
    database_url = f"sqlite:///{data_dir / 'pawpost.sqlite3'}"
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        world = build_world(session)
        session.expunge_all()
    engine.dispose()
    settings = portal_settings_for(database_url, data_dir, PAWPOST_PUBLIC_URL="https://portal.test")
    clock = Clock()
    app = create_app(settings, clock=clock)
    with background_portal(settings.replace(web_listen=("127.0.0.1", 0)), flask_app=app) as (host, port):
        yield Live(f"http://{host}:{port}", world, database_url, clock, settings)
    app.extensions["pawpost"].engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def digest_link(live: Live, name: str = "Liam Johnson") -> str:
    """A staff photo is posted, rule 3 runs, and the path of the link in that parent's digest."""
    engine = make_engine(live.database_url)
    with make_session_factory(engine)() as session:
        thread, senior = session.get(Thread, live.world.thread.id), session.get(Staff, live.world.senior.id)
        assert thread is not None and senior is not None
        post_message(session, thread, senior, "Bella at the park today", [NewAttachment("park.png", "image/png", PNG)], now=live.clock.at)
        session.commit()
        live.clock.at += timedelta(minutes=10)
        decision = digests.plan_digest_batch(session, live.settings, [thread.id], live.clock.at)  # type: ignore[arg-type]
        session.commit()
        rows = session.scalars(
            select(OutboundEmail).options(undefer(OutboundEmail.raw)).where(OutboundEmail.id.in_(decision.outbox_ids))
        ).all()
        row = next(r for r in rows if session.get(Contact, r.recipient_id).name == name)  # type: ignore[union-attr]
        found = re.search(r"View the whole conversation: https://portal\.test(/p/\S+)", text_of(row))
        assert found
    engine.dispose()
    return live.base_url + found.group(1)


def phone(browser: Browser, width: int = 390, height: int = 844) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems  # type: ignore[attr-defined]
    return page


def shot(page: Page, name: str) -> None:
    if os.environ.get("PAWPOST_SCREENSHOTS"):
        page.screenshot(path=str(SHOTS / name), full_page=True)


def test_a_parent_reads_and_replies_with_a_photo_on_a_phone(browser: Browser, live: Live, tmp_path: Path) -> None:
    link = digest_link(live)
    page = phone(browser)
    page.goto(link)
    expect(page.get_by_text("Bella at the park today")).to_be_visible()
    expect(page.get_by_text("Bella ate well")).to_be_visible()
    photo = page.locator(".photo img").last
    expect(photo).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth", photo.element_handle()) == 1  # the picture loaded
    box = photo.bounding_box()
    assert box is not None and box["width"] > 300  # large: the width of the phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    shot(page, "parent_page_390.png")

    upload = tmp_path / "home.png"
    upload.write_bytes(PNG)
    page.get_by_label("Write to Happy Tails").fill("Thanks! Here she is at home")
    page.get_by_label("Add photos or files").set_input_files(str(upload))
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".message.mine .body").last).to_have_text("Thanks! Here she is at home")
    expect(page.locator(".message.mine .photo img")).to_have_count(1)
    assert page.problems == []  # type: ignore[attr-defined]

    page.get_by_role("link", name="Change how often we email you").click()
    page.get_by_label("Once a day, a summary at").check()
    page.get_by_label("Time of the daily summary (America/New_York)").fill("18:30")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_label("Once a day, a summary at")).to_be_checked()
    shot(page, "parent_emails_390.png")
    page.get_by_label("About each new message").check()  # back to the default for the next test
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_label("About each new message")).to_be_checked()
    assert page.problems == []  # type: ignore[attr-defined]

    desktop = phone(browser, 1280, 900)
    desktop.goto(link)
    shot(desktop, "parent_page_desktop.png")

    staff = phone(browser, 1200, 800)
    staff.goto(live.base_url + "/signin")
    staff.get_by_label("Email").fill("sam@a.test")
    staff.get_by_label("Password").fill(PASSWORD)
    staff.get_by_role("button", name="Sign in").click()
    staff.goto(live.base_url + f"/threads/{live.world.thread.id}")
    expect(staff.get_by_text("Thanks! Here she is at home")).to_be_visible()
    expect(staff.get_by_alt_text("home.png")).to_be_visible()


def test_an_expired_link_and_a_link_after_rotation_say_a_new_one_is_coming(browser: Browser, live: Live) -> None:
    page = phone(browser)
    link = digest_link(live)
    live.clock.at += timedelta(days=31)
    page.goto(link)
    expect(page.get_by_text("A new link comes with the next email")).to_be_visible()
    shot(page, "parent_link_expired_390.png")

    link = digest_link(live)
    page.goto(link)
    expect(page.get_by_text("Bella at the park today").last).to_be_visible()
    engine = make_engine(live.database_url)
    with make_session_factory(engine)() as session:
        thread = session.get(Thread, live.world.thread.id)
        assert thread is not None
        rotate_reply_token(session, thread)
        session.commit()
    engine.dispose()
    page.goto(link)
    expect(page.get_by_text("A new link comes with the next email")).to_be_visible()
