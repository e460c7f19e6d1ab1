"""Running the business in Debian's Chromium: invite → set password → signed in; forgot → reset →
signed in; two-factor enrolment and sign-in; a new family and appointment reach the walker."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from portal import create_app
from tests.browser import launched_chromium
from tests.factories import PASSWORD
from tests.portal.auth_helpers import link_path, outbox
from tests.portal.conftest import World, build_world, portal_settings_for
from threads.db import make_engine, make_session_factory

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # `launched_chromium` reports it
    pass

pytestmark = pytest.mark.browser


@dataclass
class Live:
    base_url: str
    world: World
    database_url: str

    def url(self, path: str) -> str:
        return self.base_url + path

    def newest_link(self, kind: str, path_kind: str) -> str:
        engine = make_engine(self.database_url)
        try:
            with make_session_factory(engine)() as session:
                return link_path(outbox(session, kind)[-1], path_kind)
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def live(browser: Browser, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from werkzeug.serving import make_server

    data_dir = tmp_path_factory.mktemp("accounts")
    shutil.copy(sqlite_template, data_dir / "pawpost.sqlite3")
    database_url = f"sqlite:///{data_dir / 'pawpost.sqlite3'}"
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        world = build_world(session)
        session.expunge_all()
    engine.dispose()
    app = create_app(portal_settings_for(database_url, data_dir, PAWPOST_PUBLIC_URL="https://portal.test"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(f"http://127.0.0.1:{server.server_port}", world, database_url)
    server.shutdown()
    server.server_close()
    app.extensions["pawpost"].engine.dispose()


def sign_in(page: Page, live: Live, email: str, password: str) -> None:
    page.goto(live.url("/signin"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def choose_password(page: Page, password: str) -> None:
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Confirm password").fill(password)
    page.get_by_role("button", name="Set password").click()


def test_an_admin_invites_a_walker_who_sets_a_password_and_is_signed_in(browser: Browser, live: Live) -> None:
    admin = browser.new_context().new_page()
    sign_in(admin, live, "ada@a.test", PASSWORD)
    admin.get_by_role("link", name="Staff").click()
    admin.get_by_label("Name").fill("Wren Walker")
    admin.get_by_label("Email").fill("wren@a.test")
    admin.get_by_label("Role").select_option("basic")
    admin.get_by_role("button", name="Send invitation").click()
    expect(admin.get_by_role("status")).to_contain_text("Invitation sent to Wren Walker")
    expect(admin.locator("tr", has_text="Wren Walker")).to_contain_text("invited")

    walker = browser.new_context().new_page()
    walker.goto(live.url(live.newest_link("invite", "invite")))
    expect(walker.get_by_role("heading", name="Welcome to Pawpost")).to_be_visible()
    choose_password(walker, "wren's own long password")
    expect(walker).to_have_url(re.compile(r"/today$"))
    expect(walker.locator(".whoami")).to_contain_text("Wren Walker")
    walker.goto(live.url(live.newest_link("invite", "invite")))
    expect(walker.get_by_role("alert")).to_contain_text("expired or was already used")


def test_a_forgotten_password_is_reset_from_the_emailed_link(browser: Browser, live: Live) -> None:
    page = browser.new_context().new_page()
    page.goto(live.url("/signin"))
    page.get_by_role("link", name="Forgot password?").click()
    page.get_by_label("Email").fill("sky@a.test")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("status")).to_contain_text("If sky@a.test belongs to a Pawpost account")
    page.goto(live.url(live.newest_link("password_reset", "reset")))
    choose_password(page, "sky's brand new password")
    expect(page).to_have_url(re.compile(r"/messages$"))
    expect(page.locator(".whoami")).to_contain_text("Sky Senior")
    other = browser.new_context().new_page()
    sign_in(other, live, "sky@a.test", "sky's brand new password")
    expect(other).to_have_url(re.compile(r"/messages$"))


def test_two_factor_enrolment_then_sign_in_with_a_code_and_with_a_recovery_code(browser: Browser, live: Live) -> None:
    import time

    import pyotp

    page = browser.new_context().new_page()
    sign_in(page, live, "sam@a.test", PASSWORD)
    page.locator(".whoami").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().strip())
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("link", name="I saved them").click()
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live, "sam@a.test", PASSWORD)
    expect(page).to_have_url(re.compile(r"/signin/code$"))
    # The code used to turn it on is spent: the next 30-second step's code (accepted one step early).
    page.get_by_label("Authentication code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/messages$"))
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live, "sam@a.test", PASSWORD)
    page.get_by_label("Authentication code").fill(codes[3])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/messages$"))
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live, "sam@a.test", PASSWORD)
    page.get_by_label("Authentication code").fill(codes[3])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right")


def test_an_admin_adds_a_family_and_an_appointment_and_the_walker_sees_it_today(browser: Browser, live: Live) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    admin = browser.new_context().new_page()
    sign_in(admin, live, "ada@a.test", PASSWORD)
    admin.get_by_role("link", name="Families").click()
    admin.get_by_label("Family name").fill("Okafor family")
    admin.get_by_label("Primary contact").fill("Ada Okafor")
    admin.get_by_label("Their email").fill("ada.okafor@example.com")
    admin.get_by_role("button", name="Add family").click()
    expect(admin.get_by_role("status")).to_contain_text("Added Okafor family")
    admin.get_by_label("Name", exact=True).last.fill("Pepper")
    admin.locator("#new-pet-species").fill("dog")
    admin.get_by_role("button", name="Add pet").click()
    expect(admin.get_by_role("status")).to_contain_text("Added Pepper")

    admin.get_by_role("link", name="Schedule").click()
    admin.get_by_role("link", name="Add appointment").click()
    admin.get_by_label("Family").select_option(label="Okafor family")
    admin.get_by_label("Bo Basic").check()
    admin.get_by_label("Service").fill("walk")
    local = datetime.now(ZoneInfo("America/New_York"))
    start = local.replace(hour=0, minute=0) if local.hour == 0 else local - timedelta(hours=1)
    end = local + timedelta(minutes=30)
    admin.locator("#start_date").fill(start.date().isoformat())
    admin.locator("#start_time").fill(start.strftime("%H:%M"))
    admin.locator("#end_date").fill(end.date().isoformat())
    admin.locator("#end_time").fill(end.strftime("%H:%M"))
    admin.get_by_role("button", name="Add appointment").click()
    expect(admin.get_by_role("status")).to_contain_text("Appointment added")
    expect(admin.locator("table.calendar")).to_contain_text("Okafor family")

    walker = browser.new_context().new_page()
    sign_in(walker, live, "bo@a.test", PASSWORD)
    expect(walker).to_have_url(re.compile(r"/today$"))
    walker.get_by_role("link", name=re.compile("Okafor family")).click()
    expect(walker.get_by_role("heading", name="Okafor family")).to_be_visible()
    expect(walker.locator(".pets-list")).to_contain_text("Pepper")
    walker.get_by_role("link", name="Message Ada Okafor").click()
    expect(walker).to_have_url(re.compile(r"/threads/\d+$"))


def test_the_csv_preview_shows_row_errors_and_applies_nothing(browser: Browser, live: Live) -> None:
    from sqlalchemy import func, select

    from threads.csv_import import FAMILY_COLUMNS
    from threads.models import Family

    def families() -> int:
        engine = make_engine(live.database_url)
        try:
            with make_session_factory(engine)() as session:
                return session.scalar(select(func.count()).select_from(Family)) or 0
        finally:
            engine.dispose()

    before = families()
    text = ",".join(FAMILY_COLUMNS) + "\nbaker,Baker family,Bea Baker,bea@example.com,yes,Toby,dog,\nlee,Lee family,Lou Lee,not-an-address,,,,\n"
    admin = browser.new_context().new_page()
    sign_in(admin, live, "ada@a.test", PASSWORD)
    admin.goto(live.url("/import"))
    admin.get_by_label("The file holds").select_option("families")
    admin.get_by_label("CSV file").set_input_files({"name": "families.csv", "mimeType": "text/csv", "buffer": text.encode()})
    admin.get_by_role("button", name="Preview").click()
    problems = admin.get_by_role("table", name="Problems by row")
    expect(problems).to_contain_text("contact_email")
    expect(problems.locator("tbody tr").first).to_contain_text("3")
    expect(admin.get_by_role("alert")).to_contain_text("Nothing was imported")
    expect(admin.get_by_role("button", name=re.compile(r"^Import "))).to_have_count(0)
    assert families() == before
