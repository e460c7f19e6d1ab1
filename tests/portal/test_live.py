"""`/live` over real sockets: who hears which hint, and when a stream ends.

The portal and its stream run on one uvicorn server on an ephemeral port (as under
`pawpost up`); hints go through the real doors (`outbound.notify.message_posted` after a
commit, the portal's quarantine and sign-out views). "Never hears" is checked without
waiting: after the hint a stream must not get, one it must get is sent, and the first hint
the stream reads has to be that one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from outbound.notify import message_posted
from pawpost.settings import Settings
from portal import SESSION_COOKIE_NAME, create_app
from portal.live import PING, Hub
from portal.live_server import background_portal
from tests.e2e.processes import PAWPOST, eventually, free_port
from tests.portal.conftest import World, csrf_token, portal_settings_for, sign_in_as
from tests.portal.live_client import EventStream
from tests.private_redis import private_redis
from threads.db import make_engine, make_session_factory
from threads.models import Staff, StaffSession, Thread
from threads.posting import post_message
from threads.types import utcnow


@dataclass
class Served:
    host: str
    port: int
    app: Flask
    world: World
    database_url: str

    def stream(self, staff: Staff) -> EventStream:
        stream = EventStream(self.host, self.port, cookie_for(self.app, staff))
        assert stream.status == 200
        assert stream.next_event() == ("hello", {})  # registered: hints from now on reach it
        return stream


def cookie_for(app: Flask, staff: Staff) -> str:
    """The session cookie the sign-in form would have set in this staff member's browser."""
    client = app.test_client()
    sign_in_as(app, client, staff)
    cookie = client.get_cookie(SESSION_COOKIE_NAME)
    assert cookie is not None
    return cookie.value


def parent_posts(database_url: str, thread_id: int, text: str) -> int:
    """A parent's message committed, then announced through the one door, as inbound does."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            thread = session.get(Thread, thread_id)
            assert thread is not None
            message_id = post_message(session, thread, thread.family.contacts[0], text, source="email").id
    finally:
        engine.dispose()
    message_posted(message_id)
    return message_id


@pytest.fixture
def served(app: Flask, world: World, portal_settings: Settings) -> Iterator[Served]:
    with background_portal(portal_settings.replace(web_listen=("127.0.0.1", 0)), flask_app=app) as (host, port):
        yield Served(host, port, app, world, portal_settings.database_url)


def test_the_stream_opens_only_for_a_valid_session(served: Served, db: Session) -> None:
    world = served.world
    with EventStream(served.host, served.port) as anonymous:
        assert anonymous.status == 401
    with EventStream(served.host, served.port, "eyJzdGFmZl9pZCI6MX0.forged.signature") as forged:
        assert forged.status == 401
    sky = cookie_for(served.app, world.senior2)
    db.execute(update(Staff).where(Staff.id == world.senior2.id).values(active=False))
    db.commit()
    with EventStream(served.host, served.port, sky) as deactivated:
        assert deactivated.status == 401
    with served.stream(world.senior):
        pass


def test_a_message_reaches_its_own_business_only(served: Served) -> None:
    world = served.world
    with served.stream(world.senior) as ours, served.stream(world.foreign_senior) as theirs:
        parent_posts(served.database_url, world.thread.id, "Bella is limping")
        parent_posts(served.database_url, world.foreign_thread.id, "Hello from next door")
        assert ours.next_hint() == ("posted", {"thread_id": world.thread.id})
        # Business B's first hint is its own thread: A's message never reached it.
        assert theirs.next_hint() == ("posted", {"thread_id": world.foreign_thread.id})


def test_basic_staff_hear_only_about_todays_families(served: Served) -> None:
    world = served.world
    with served.stream(world.basic) as bo, served.stream(world.senior) as sam:
        parent_posts(served.database_url, world.other_thread.id, "Luna limps again")  # not Bo's family today
        parent_posts(served.database_url, world.thread.id, "Bella is ready")  # Bo walks the Johnsons today
        assert sam.next_hint() == ("posted", {"thread_id": world.other_thread.id})
        assert sam.next_hint() == ("posted", {"thread_id": world.thread.id})
        assert bo.next_hint() == ("posted", {"thread_id": world.thread.id})


def test_a_quarantine_change_reaches_seniors_of_the_business(served: Served) -> None:
    world = served.world
    client = served.app.test_client()
    sign_in_as(served.app, client, world.senior)
    token = csrf_token(client, "/quarantine")
    with served.stream(world.senior2) as sky, served.stream(world.basic) as bo, served.stream(world.foreign_senior) as fay:
        response = client.post(f"/quarantine/{world.held.id}/discard", data={"csrf_token": token})
        assert response.status_code == 302
        assert sky.next_hint() == ("quarantine", {})
        assert client.get("/api/unread").get_json()["held"] == 1  # what Sky's tab fetches next
        parent_posts(served.database_url, world.thread.id, "Bella is ready")
        assert bo.next_hint() == ("posted", {"thread_id": world.thread.id})  # quarantine is for seniors
        parent_posts(served.database_url, world.foreign_thread.id, "Hi")
        assert fay.next_hint() == ("posted", {"thread_id": world.foreign_thread.id})


def test_reading_a_thread_tells_only_the_readers_other_tabs(served: Served) -> None:
    world = served.world
    client = served.app.test_client()
    sign_in_as(served.app, client, world.senior)
    with served.stream(world.senior) as sam, served.stream(world.senior2) as sky:
        assert client.get(f"/threads/{world.thread.id}").status_code == 200
        assert sam.next_hint() == ("read", {})
        parent_posts(served.database_url, world.other_thread.id, "Luna limps")
        assert sky.next_hint() == ("posted", {"thread_id": world.other_thread.id})


def test_signing_out_ends_that_persons_streams(served: Served) -> None:
    world = served.world
    client = served.app.test_client()
    sign_in_as(served.app, client, world.senior)
    cookie = client.get_cookie(SESSION_COOKIE_NAME)
    assert cookie is not None
    token = csrf_token(client, "/messages")
    with EventStream(served.host, served.port, cookie.value) as sam, served.stream(world.senior2) as sky:
        assert sam.next_event() == ("hello", {})
        assert client.post("/signout", data={"csrf_token": token}).status_code == 302
        assert sam.next_hint() is None  # ended
        parent_posts(served.database_url, world.thread.id, "Still there?")
        assert sky.next_hint() == ("posted", {"thread_id": world.thread.id})  # other people's stay open


def test_checks_end_streams_of_deactivated_staff_and_of_a_basic_day_that_ended(
    app: Flask, world: World, db: Session, portal_settings: Settings
) -> None:
    moment = [utcnow()]
    engine = make_engine(portal_settings.database_url)
    hub = Hub(portal_settings, make_session_factory(engine), clock=lambda: moment[0])
    cookies = {staff.id: cookie_for(app, staff) for staff in (world.senior, world.senior2, world.basic)}

    def queued(tab: object) -> list[bytes | None]:
        items = []
        while not tab.outbox.empty():  # type: ignore[attr-defined]
            items.append(tab.outbox.get_nowait())  # type: ignore[attr-defined]
        return items

    async def scenario() -> None:
        sam, sky, bo = (hub.open(hub.identify(cookies[s.id])) for s in (world.senior, world.senior2, world.basic))  # type: ignore[arg-type]
        assert bo.viewer.ends_at is not None and sam.viewer.ends_at is None
        db.execute(update(Staff).where(Staff.id == world.senior2.id).values(active=False))
        db.commit()
        await hub.check_tabs()
        assert queued(sky) == [None]  # deactivated: the stream ends
        assert queued(sam) == [PING] and queued(bo) == [PING]  # the heartbeat that keeps proxies open
        # Sam's own session outlives the day here (a 14-hour session may end first, and
        # that ends the stream for its own reason, checked below).
        db.execute(update(StaffSession).where(StaffSession.id == sam.viewer.session_id).values(expires_at=bo.viewer.ends_at + timedelta(hours=1)))
        db.commit()
        moment[0] = bo.viewer.ends_at + timedelta(seconds=1)  # the business day is over
        await hub.check_tabs()
        assert queued(bo) == [None]
        assert queued(sam) == [PING]
        moment[0] = bo.viewer.ends_at + timedelta(hours=2)  # Sam's session has expired
        await hub.check_tabs()
        assert queued(sam) == [None]

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()


def test_stopping_the_server_ends_every_stream_with_bye(app: Flask, world: World, portal_settings: Settings) -> None:
    with background_portal(portal_settings.replace(web_listen=("127.0.0.1", 0)), flask_app=app) as (host, port):
        stream = EventStream(host, port, cookie_for(app, world.senior))
        assert stream.next_event() == ("hello", {})
    assert stream.next_event() == ("bye", {})
    assert stream.next_event() is None
    stream.close()


def test_the_stream_survives_a_redis_restart(world: World, database_url: str, tmp_path: Path) -> None:
    with private_redis(tmp_path) as redis_server:
        channel = f"test-live-{uuid.uuid4().hex}"
        settings = portal_settings_for(
            database_url, tmp_path, PAWPOST_LIVE_URL=f"{redis_server.url}?channel={channel}", PAWPOST_WEB_LISTEN="127.0.0.1:0"
        )
        app = create_app(settings)  # this process now publishes its hints to that Redis
        try:
            with background_portal(settings, flask_app=app) as (host, port):
                served = Served(host, port, app, world, database_url)
                with served.stream(world.senior) as sam:
                    eventually(lambda: redis_server.subscribers(channel) == 1, "the stream process subscribing")
                    parent_posts(database_url, world.thread.id, "Before the restart")
                    assert sam.next_hint() == ("posted", {"thread_id": world.thread.id})
                    redis_server.stop()
                    parent_posts(database_url, world.other_thread.id, "While Redis is down")  # its hint is lost
                    redis_server.start()
                    assert sam.next_hint() == ("resync", {})  # the tab catches up by fetching
                    parent_posts(database_url, world.thread.id, "After the restart")
                    assert sam.next_hint() == ("posted", {"thread_id": world.thread.id})
        finally:
            app.extensions["pawpost"].engine.dispose()


def test_pawpost_live_ends_streams_with_bye_on_sigterm(app: Flask, world: World, database_url: str, tmp_path: Path) -> None:
    with private_redis(tmp_path) as redis_server:
        port = free_port()
        settings = portal_settings_for(
            database_url, tmp_path, PAWPOST_LIVE_URL=f"{redis_server.url}?channel=test-live-{uuid.uuid4().hex}",
            PAWPOST_LIVE_LISTEN=f"127.0.0.1:{port}",
        )
        log = (tmp_path / "live.log").open("wb")
        process = subprocess.Popen([str(PAWPOST), "live"], env={**os.environ, **settings.environment()}, stdout=log, stderr=subprocess.STDOUT)
        try:
            eventually(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, "pawpost live listening")
            with EventStream("127.0.0.1", port, cookie_for(app, world.senior)) as sam:
                assert sam.next_event() == ("hello", {})
                process.send_signal(signal.SIGTERM)
                assert sam.next_event() == ("bye", {})
                assert sam.next_event() is None
            assert process.wait(timeout=15) == 0, (tmp_path / "live.log").read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
            log.close()


def test_one_person_cannot_hold_unbounded_streams(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    import portal.live

    monkeypatch.setattr(portal.live, "MAX_TABS_PER_STAFF", 2)
    world = served.world
    with served.stream(world.senior), served.stream(world.senior):
        with EventStream(served.host, served.port, cookie_for(served.app, world.senior)) as third:
            assert third.status == 429
        with served.stream(world.senior2):  # someone else's tabs are not counted against Sam
            pass


def test_pawpost_live_refuses_to_run_without_redis(tmp_path: Path) -> None:
    """Alone, the stream process could hear no other process: say so instead of serving silence."""
    env = {**os.environ, **portal_settings_for(f"sqlite:///{tmp_path / 'p.sqlite3'}", tmp_path).environment()}
    done = subprocess.run([str(PAWPOST), "live"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "PAWPOST_LIVE_URL" in done.stderr
