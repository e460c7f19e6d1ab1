"""The portal in Debian's Chromium: what senior and basic staff actually see and do.

One live server (uvicorn: the portal and its `/live` stream, as `pawpost up` runs them, on an
ephemeral port) on a real SQLite file, the real inbound
SMTP server for parents' replies, and one browser for the module; each test opens fresh
browser contexts (separate cookies), so two seniors can watch the same inbox.
"""

from __future__ import annotations

import shutil
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from inbound.server import running_smtp_server
from portal import create_app
from portal.live_server import background_portal
from tests.browser import launched_chromium
from tests.factories import PASSWORD
from tests.portal.conftest import World, build_world, portal_settings_for
from threads.db import make_engine, make_session_factory
from threads.models import Thread
from threads.posting import post_message
from threads.reading import mark_read

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # `launched_chromium` reports it
    pass

pytestmark = pytest.mark.browser

LIVE_TIMEOUT_MS = 10_000  # hints arrive at once; this is only the give-up point


@dataclass
class Live:
    base_url: str
    smtp: tuple[str, int]
    world: World
    database_url: str

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def live(browser: Browser, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("live")
    shutil.copy(sqlite_template, data_dir / "pawpost.sqlite3")
    database_url = f"sqlite:///{data_dir / 'pawpost.sqlite3'}"
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        world = build_world(session)
        session.expunge_all()
    engine.dispose()
    settings = portal_settings_for(database_url, data_dir, PAWPOST_SMTP_LISTEN="127.0.0.1:0")
    with running_smtp_server(settings) as smtp:
        app = create_app(settings.replace(smtp_listen=smtp))
        with background_portal(settings.replace(web_listen=("127.0.0.1", 0)), flask_app=app) as (host, port):
            yield Live(f"http://{host}:{port}", smtp, world, database_url)
        app.extensions["pawpost"].engine.dispose()


def signed_in_page(browser: Browser, live: Live, email: str, *, width: int = 1200) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.problems = problems  # type: ignore[attr-defined]
    page.goto(live.url("/signin"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


def read_everything(live: Live, *staff_ids: int) -> None:
    engine = make_engine(live.database_url)
    with make_session_factory(engine)() as session, session.begin():
        from threads.models import Person

        for thread in session.query(Thread).all():
            for staff_id in staff_ids:
                mark_read(session, thread, Person("staff", staff_id))
    engine.dispose()


def parent_writes(live: Live, thread: Thread, sender: str, subject: str, text: str, html: str | None = None) -> None:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = f"reply+{thread.reply_token}@reply.test"
    message["Subject"] = subject
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    with smtplib.SMTP(*live.smtp, timeout=30) as client:
        client.send_message(message)


def assert_clean(page: Any) -> None:
    assert page.problems == [], page.problems


def test_senior_finds_a_family_by_pet_and_sends_with_enter(browser: Browser, live: Live) -> None:
    page = signed_in_page(browser, live, "sam@a.test")
    expect(page).to_have_url(live.url("/messages"))
    page.get_by_role("combobox").fill("lun")
    option = page.get_by_role("option").first
    expect(option).to_contain_text("Garcia family")
    page.get_by_role("combobox").press("Enter")
    expect(page).to_have_url(live.url(f"/threads/{live.world.other_thread.id}"))

    box = page.get_by_label("Message to the Garcia family")
    box.fill("Luna had a great walk!")
    box.press("Enter")
    expect(page.locator(".msg.mine .body").last).to_have_text("Luna had a great walk!")
    expect(box).to_have_value("")

    box.type("Line one")
    box.press("Shift+Enter")
    box.type("Line two")
    expect(box).to_have_value("Line one\nLine two")
    expect(page.locator(".msg.mine")).to_have_count(1)  # Shift+Enter sent nothing
    box.press("Enter")
    expect(page.locator(".msg.mine")).to_have_count(2)
    assert page.locator(".msg.mine .body").last.inner_text() == "Line one\nLine two"
    assert_clean(page)
    page.context.close()


def test_a_parents_reply_lights_the_dot_for_two_seniors_and_reading_clears_it_for_one(browser: Browser, live: Live) -> None:
    world = live.world
    read_everything(live, world.senior.id, world.senior2.id)
    sam = signed_in_page(browser, live, "sam@a.test")
    sky = signed_in_page(browser, live, "sky@a.test")
    for page in (sam, sky):
        expect(page.locator("#tab-dot")).to_be_hidden()
    parent_writes(live, world.thread, world.scheduled.contacts[0].email, "Re: Bella", "Can you give Bella her pill at noon?")  # type: ignore[arg-type]

    row = f'[data-thread-id="{world.thread.id}"]'
    for page in (sam, sky):
        expect(page.locator("#tab-dot")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        expect(page.locator(f"{row} .dot")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        expect(page.locator(row)).to_contain_text("Can you give Bella her pill at noon?")
        assert page.locator('#tab-dot[aria-label="unread"]').count() == 1

    sam.locator(f"{row} a").click()
    expect(sam.locator(".msg-contact .body").last).to_have_text("Can you give Bella her pill at noon?")
    expect(sam.locator("#tab-dot")).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
    sam.go_back()
    expect(sam.locator(f"{row} .dot")).to_be_hidden(timeout=LIVE_TIMEOUT_MS)

    sky.wait_for_timeout(1500)  # Sam's read hint reaches only Sam's tabs
    expect(sky.locator("#tab-dot")).to_be_visible()
    sky.reload()
    expect(sky.locator(f"{row} .dot")).to_be_visible()
    for page in (sam, sky):
        assert_clean(page)
        page.context.close()


def test_basic_staff_go_today_profile_message_and_are_refused_elsewhere(browser: Browser, live: Live) -> None:
    world = live.world
    page = signed_in_page(browser, live, "bo@a.test", width=390)  # a phone
    expect(page).to_have_url(live.url("/today"))
    expect(page.get_by_role("link", name="Messages")).to_have_count(0)
    page.get_by_role("link", name="Johnson family").click()
    expect(page.get_by_role("heading", name="Johnson family")).to_be_visible()
    page.get_by_role("link", name="Message Emma Johnson").click()
    expect(page).to_have_url(live.url(f"/threads/{world.thread.id}"))
    expect(page.locator(".msg-contact").first).to_contain_text("Bella ate well")
    box = page.get_by_label("Message to the Johnson family")
    box.fill("On my way to pick up Bella")
    box.press("Enter")
    expect(page.locator(".msg.mine .body").last).to_have_text("On my way to pick up Bella")
    assert_clean(page)

    for path in (f"/threads/{world.other_thread.id}", f"/families/{world.other.id}", f"/attachments/{world.other_image.id}"):
        response = page.goto(live.url(path))
        assert response is not None and response.status == 403, path
    expect(page.get_by_role("heading", name="Not yours to open")).to_be_visible()
    page.context.close()


def test_script_in_an_email_shows_as_inert_text(browser: Browser, live: Live) -> None:
    world = live.world
    hostile = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    parent_writes(
        live,
        world.other_thread,
        world.other.contacts[0].email,  # type: ignore[arg-type]
        "hello",
        f"Look: {hostile}",
        html=f"<p>Look: {hostile}</p>",
    )
    # Formatting kept from an HTML email is shown only after nh3 has sanitised it.
    engine = make_engine(live.database_url)
    with make_session_factory(engine)() as session, session.begin():
        thread = session.get(Thread, world.other_thread.id)
        assert thread is not None
        post_message(
            session, thread, thread.family.contacts[0], "See the formatted version", source="email",
            html=f'<p><b>Bold</b> {hostile}<a href="javascript:window.pwned=3">me</a></p>',
        )
    engine.dispose()

    page = signed_in_page(browser, live, "ada@a.test")
    page.goto(live.url(f"/threads/{world.other_thread.id}"))
    expect(page.locator(".msg-contact .body", has_text="Look:")).to_have_text(f"Look: {hostile}")
    page.locator("summary", has_text="Show original formatting").last.click()
    expect(page.locator(".email-html b")).to_have_text("Bold")
    page.locator(".email-html a").click()
    page.wait_for_timeout(300)
    assert page.evaluate("window.pwned") is None
    assert page.locator(".email-html script, .email-html [onerror], .email-html [href^='javascript']").count() == 0
    assert page.locator(".body img").count() == 0
    assert_clean(page)
    page.context.close()
