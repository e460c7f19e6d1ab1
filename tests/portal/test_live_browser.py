"""Live updates in Debian's Chromium: two staff in two browser contexts, the stream up.

Each test runs its own server (uvicorn: the portal and `/live`, as `pawpost up` runs them)
on a real SQLite file with the real SMTP server, so one test may stop Redis or the server.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from inbound.server import running_smtp_server
from pawpost.settings import Settings
from portal import create_app
from portal.live_server import background_portal
from tests.browser import launched_chromium
from tests.e2e.processes import free_port
from tests.portal.conftest import World, build_world, portal_settings_for
from tests.portal.test_browser import Live, assert_clean, parent_writes, read_everything, signed_in_page
from tests.portal.test_live import parent_posts
from tests.private_redis import private_redis
from threads.db import make_engine, make_session_factory

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # `launched_chromium` reports it
    pass

pytestmark = pytest.mark.browser

GIVE_UP_MS = 10_000  # hints arrive at once; this is only the give-up point
# Longer than the 2.5 s polling round the portal had before the stream.
QUIET_MS = 3_500
POLLED = re.compile(r"/api/unread|/threads/\d+/messages(\?|$)|/messages/rows")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def world_db(sqlite_template: Path, tmp_path: Path) -> tuple[World, str]:
    shutil.copy(sqlite_template, tmp_path / "pawpost.sqlite3")
    database_url = f"sqlite:///{tmp_path / 'pawpost.sqlite3'}"
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        world = build_world(session)
        session.expunge_all()
    engine.dispose()
    return world, database_url


@contextmanager
def serving(settings: Settings, world: World, *, port: int = 0) -> Iterator[Live]:
    """SMTP, then the portal with its stream on `port`; stops both on exit."""
    with running_smtp_server(settings.replace(smtp_listen=("127.0.0.1", 0))) as smtp:
        app = create_app(settings.replace(smtp_listen=smtp))
        try:
            with background_portal(settings.replace(web_listen=("127.0.0.1", port)), flask_app=app) as (host, bound):
                yield Live(f"http://{host}:{bound}", smtp, world, settings.database_url)
        finally:
            app.extensions["pawpost"].engine.dispose()


def watch_requests(page: Page) -> list[str]:
    """Every request path the page makes from now on (the browser's network log)."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url.split("://", 1)[1].split("/", 1)[1]))
    return seen


def polled(seen: list[str]) -> list[str]:
    return [path for path in seen if POLLED.search("/" + path)]


def stream_up(page: Page) -> None:
    expect(page.locator("html")).to_have_attribute("data-live", "up", timeout=GIVE_UP_MS)


def test_a_parents_reply_reaches_the_other_staff_members_thread_and_inbox_without_polling(
    browser: Browser, world_db: tuple[World, str], tmp_path: Path
) -> None:
    world, database_url = world_db
    settings = portal_settings_for(database_url, tmp_path)
    with serving(settings, world) as live:
        read_everything(live, world.senior.id, world.senior2.id)
        sam = signed_in_page(browser, live, "sam@a.test")  # the inbox
        sky = signed_in_page(browser, live, "sky@a.test")
        sky.goto(live.url(f"/threads/{world.thread.id}"))  # the Johnsons' thread, open
        for page in (sam, sky):
            stream_up(page)
        logs = {"sam": watch_requests(sam), "sky": watch_requests(sky)}
        loads = {"sam": 0, "sky": 0}
        sam.on("load", lambda _: loads.__setitem__("sam", loads["sam"] + 1))
        sky.on("load", lambda _: loads.__setitem__("sky", loads["sky"] + 1))

        sam.wait_for_timeout(QUIET_MS)
        assert polled(logs["sam"]) == [] and polled(logs["sky"]) == []  # nothing asks "anything new?"

        parent_writes(live, world.thread, world.scheduled.contacts[0].email, "Re: Bella", "Bella loved her walk today!")  # type: ignore[arg-type]
        body = sky.locator(".msg-contact .body", has_text="Bella loved her walk today!")
        expect(body).to_have_count(1, timeout=GIVE_UP_MS)
        row = sam.locator(f'[data-thread-id="{world.thread.id}"]')
        expect(row).to_contain_text("Bella loved her walk today!", timeout=GIVE_UP_MS)
        expect(row.locator(".dot")).to_be_visible()
        expect(sam.locator("#tab-dot")).to_be_visible()
        expect(sam.locator("#thread-list [data-thread-id]").first).to_have_attribute("data-thread-id", str(world.thread.id))
        assert loads == {"sam": 0, "sky": 0}  # no reload
        assert polled(logs["sky"]) and polled(logs["sam"])  # fetched because of the hint

        for seen in logs.values():
            seen.clear()
        sam.wait_for_timeout(QUIET_MS)
        assert polled(logs["sam"]) == [] and polled(logs["sky"]) == []
        expect(body).to_have_count(1)
        for page in (sam, sky):
            assert_clean(page)
            page.context.close()


def test_the_quarantine_count_follows_an_emailed_stranger(browser: Browser, world_db: tuple[World, str], tmp_path: Path) -> None:
    world, database_url = world_db
    with serving(portal_settings_for(database_url, tmp_path), world) as live:
        sam = signed_in_page(browser, live, "sam@a.test")
        stream_up(sam)
        expect(sam.locator("#held-count")).to_have_text("2")
        parent_writes(live, world.thread, "stranger@nowhere.test", "Hello", "Who walks Bella?")
        expect(sam.locator("#held-count")).to_have_text("3", timeout=GIVE_UP_MS)
        assert_clean(sam)
        sam.context.close()


def test_a_redis_restart_loses_nothing_and_shows_nothing_twice(browser: Browser, world_db: tuple[World, str], tmp_path: Path) -> None:
    world, database_url = world_db
    with private_redis(tmp_path) as redis_server:
        live_url = f"{redis_server.url}?channel=test-live-{uuid.uuid4().hex}"
        settings = portal_settings_for(database_url, tmp_path, PAWPOST_LIVE_URL=live_url)
        with serving(settings, world) as live:
            sky = signed_in_page(browser, live, "sky@a.test")
            sky.goto(live.url(f"/threads/{world.thread.id}"))
            stream_up(sky)
            parent_posts(database_url, world.thread.id, "Before the restart")
            expect(sky.get_by_text("Before the restart")).to_have_count(1, timeout=GIVE_UP_MS)

            redis_server.stop()
            parent_posts(database_url, world.thread.id, "While Redis is down")  # its hint is lost
            redis_server.start()
            expect(sky.get_by_text("While Redis is down")).to_have_count(1, timeout=GIVE_UP_MS)  # caught up
            parent_posts(database_url, world.thread.id, "After the restart")
            expect(sky.get_by_text("After the restart")).to_have_count(1, timeout=GIVE_UP_MS)
            sky.wait_for_timeout(500)
            for text in ("Before the restart", "While Redis is down", "After the restart"):
                expect(sky.get_by_text(text)).to_have_count(1)
            assert_clean(sky)
            sky.context.close()


def test_a_tab_reconnects_after_the_server_restarts_and_catches_up_once(
    browser: Browser, world_db: tuple[World, str], tmp_path: Path
) -> None:
    world, database_url = world_db
    settings = portal_settings_for(database_url, tmp_path)
    port = free_port()
    with ExitStack() as first:
        live = first.enter_context(serving(settings, world, port=port))
        sky = signed_in_page(browser, live, "sky@a.test")
        sky.goto(live.url(f"/threads/{world.thread.id}"))
        stream_up(sky)
    # The server said `bye` and stopped: the tab knows the stream is down.
    expect(sky.locator("html")).to_have_attribute("data-live", "down", timeout=GIVE_UP_MS)
    parent_posts(database_url, world.thread.id, "Posted while the portal restarted")
    with serving(settings, world, port=port):
        stream_up(sky)
        expect(sky.get_by_text("Posted while the portal restarted")).to_have_count(1, timeout=GIVE_UP_MS)
        parent_posts(database_url, world.thread.id, "And one more")
        expect(sky.get_by_text("And one more")).to_have_count(1, timeout=GIVE_UP_MS)
        expect(sky.get_by_text("Posted while the portal restarted")).to_have_count(1)
    problems: list[Any] = [p for p in sky.problems if "ERR_CONNECTION_REFUSED" not in p]  # type: ignore[attr-defined]
    assert problems == []
    sky.context.close()
