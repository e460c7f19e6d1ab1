"""`GET /live`: server-sent events that tell open portal tabs what to refetch.

Why its own asyncio server (uvicorn, ASGI) rather than a gunicorn route: a tab holds its
stream all day, and gunicorn's threaded workers would spend a thread (and a slot of the
page pool) on each idle tab. Here an idle tab is one coroutine and one socket, a few
kilobytes, and the process wakes only for a hint or the heartbeat. Production runs it as
`pawpost live` behind the same origin as `pawpost web` (the proxy routes `/live` to it);
`pawpost up` serves it in-process beside the portal (`portal.server.background_portal`).

The stream carries hints, never content: `posted` (a thread id), `read`, `quarantine`,
`resync` (catch up: hints may have been lost) and `bye` (the server is closing). The tab
refetches through the pages' own endpoints, which check access again. Access on the
stream is the pages' access: the Flask session cookie (the same signed cookie, the same
password fingerprint) picks the staff member; a hint reaches only tabs of the business it
belongs to, and a basic staff member's tab only for families scheduled with them today,
re-checked for each hint. A basic staff member's stream ends at the end of their business
day; every HEARTBEAT_SECONDS each tab gets a comment (which keeps proxies from timing it
out) and every open tab's staff member is re-checked in one query, so a deactivated or
re-passworded person's streams close within a heartbeat; signing out closes them at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from http.cookies import CookieError, SimpleCookie
from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from outbound.live import Event, local_broker, redis_channel
from pawpost.settings import Settings
from portal import SESSION_COOKIE_NAME, SESSION_LIFETIME
from portal.auth import password_fingerprint
from threads.accounts import live_session
from threads.models import Business, Family, InboundEmail, Message, Staff, Thread
from threads.schedule import business_today, day_bounds, scheduled_staff
from threads.types import utcnow

logger = logging.getLogger(__name__)

LIVE_PATH = "/live"
HEARTBEAT_SECONDS = 30.0
# A tab that falls this far behind gets one `resync` instead of the hints it missed.
TAB_QUEUE_LIMIT = 32
# What the browser waits before reconnecting on its own after a clean end of the stream.
RETRY_MS = 2000
# Streams one person may hold in one process: plenty of tabs and devices, never unbounded.
MAX_TABS_PER_STAFF = 200
REDIS_RETRY_MAX_SECONDS = 5.0

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def sse(kind: str, data: dict[str, Any] | None = None) -> bytes:
    """One server-sent event."""
    return f"event: {kind}\ndata: {json.dumps(data or {}, separators=(',', ':'))}\n\n".encode()


PING = b": ping\n\n"
_END = None


@dataclass(frozen=True)
class Viewer:
    """Who a stream belongs to, as the session cookie and the database say at connect time."""

    staff_id: int
    business_id: int
    senior: bool
    fingerprint: str
    ends_at: datetime | None  # basic staff: where their business day (and so their access) ends


@dataclass(eq=False)
class Tab:
    viewer: Viewer
    outbox: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(TAB_QUEUE_LIMIT))
    ended: bool = False

    def push(self, chunk: bytes) -> None:
        if self.ended:
            return
        try:
            self.outbox.put_nowait(chunk)
        except asyncio.QueueFull:  # too slow a reader: what it missed becomes one catch-up
            self._drain()
            self.outbox.put_nowait(sse("resync"))

    def end(self, farewell: bytes | None = None) -> None:
        """Finish the stream after `farewell`; whatever was still queued is moot."""
        if self.ended:
            return
        self._drain()
        if farewell:
            self.outbox.put_nowait(farewell)
        self.outbox.put_nowait(_END)
        self.ended = True

    def _drain(self) -> None:
        while not self.outbox.empty():
            self.outbox.get_nowait()


class Hub:
    """Every open tab of this process, the feed of hints, and who may hear which."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.by_business: dict[int, set[Tab]] = defaultdict(set)
        self.by_staff: dict[int, set[Tab]] = defaultdict(set)
        self.closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        serializer_app = Flask("pawpost-live")
        serializer_app.secret_key = settings.secret_key
        serializer = SecureCookieSessionInterface().get_signing_serializer(serializer_app)
        assert serializer is not None
        self._serializer = serializer
        self._max_age = int(SESSION_LIFETIME.total_seconds())

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        feed = self._local_feed() if self.settings.live_is_local else self._redis_feed()
        self._tasks = [asyncio.create_task(feed), asyncio.create_task(self._heartbeats())]

    async def stop(self) -> None:
        self.close_all()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def close_all(self) -> None:
        """End every stream with `bye` (a deploy or shutdown): browsers reconnect with backoff."""
        self.closing = True
        for tabs in list(self.by_business.values()):
            for tab in list(tabs):
                tab.end(sse("bye"))

    def close_all_threadsafe(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.close_all)

    @property
    def open_tabs(self) -> int:
        return sum(len(tabs) for tabs in self.by_business.values())

    # -- tabs -----------------------------------------------------------------------------

    def identify(self, cookie: str) -> Viewer | None:
        """The staff member a session cookie signs in, exactly as the portal would (blocking)."""
        try:
            data = self._serializer.loads(cookie, max_age=self._max_age)
        except BadSignature:
            return None
        # The cookie names a server-side session (`sid`), as for every portal request.
        token, fingerprint = data.get("sid"), data.get("auth")
        if not isinstance(token, str) or not isinstance(fingerprint, str):
            return None
        with self.sessions() as session:
            row = live_session(session, token, self.clock())
            staff = row.staff if row is not None else None
            if staff is None or fingerprint != password_fingerprint(self.settings.secret_key, staff.password_hash):
                return None
            ends_at = None
            if not staff.is_senior:
                ends_at = day_bounds(staff.business, business_today(staff.business, self.clock()))[1]
            return Viewer(staff.id, staff.business_id, staff.is_senior, fingerprint, ends_at)

    def open(self, viewer: Viewer) -> Tab:
        tab = Tab(viewer)
        self.by_business[viewer.business_id].add(tab)
        self.by_staff[viewer.staff_id].add(tab)
        return tab

    def close(self, tab: Tab) -> None:
        tab.ended = True
        for index, key in ((self.by_business, tab.viewer.business_id), (self.by_staff, tab.viewer.staff_id)):
            tabs = index.get(key)
            if tabs is not None:
                tabs.discard(tab)
                if not tabs:
                    del index[key]

    # -- hints ----------------------------------------------------------------------------

    async def deliver(self, event: Event) -> None:
        """Fan one hint out to the tabs allowed to hear it."""
        kind = event.get("kind")
        if kind == "message" and isinstance(event.get("message_id"), int):
            with_basic = {b for b, tabs in self.by_business.items() if any(not t.viewer.senior for t in tabs)}
            audience = await asyncio.to_thread(self._message_audience, event["message_id"], with_basic)
            if audience is None:
                return
            business_id, thread_id, scheduled = audience
            chunk = sse("posted", {"thread_id": thread_id})
            for tab in list(self.by_business.get(business_id, ())):
                if tab.viewer.senior or tab.viewer.staff_id in scheduled:
                    tab.push(chunk)
        elif kind == "quarantine" and isinstance(event.get("inbound_email_id"), int):
            business_id = await asyncio.to_thread(self._email_business, event["inbound_email_id"])
            for tab in list(self.by_business.get(business_id or -1, ())):
                if tab.viewer.senior:
                    tab.push(sse("quarantine"))
        elif kind == "read" and isinstance(event.get("staff_id"), int):
            for tab in list(self.by_staff.get(event["staff_id"], ())):
                tab.push(sse("read"))
        elif kind == "signout" and isinstance(event.get("staff_id"), int):
            for tab in list(self.by_staff.get(event["staff_id"], ())):
                tab.end()

    def resync_all(self) -> None:
        """Hints may have been lost (the feed was down): every tab catches up once."""
        for tabs in list(self.by_business.values()):
            for tab in list(tabs):
                tab.push(sse("resync"))

    def _message_audience(self, message_id: int, with_basic: set[int]) -> tuple[int, int, set[int]] | None:
        """The message's business and thread, and the staff scheduled with its family today
        (asked only when the business has basic staff's tabs open)."""
        with self.sessions() as session:
            row = session.execute(
                select(Thread.business_id, Thread.id, Thread.family_id)
                .join(Message, Message.thread_id == Thread.id)
                .where(Message.id == message_id)
            ).first()
            if row is None:
                return None
            scheduled: set[int] = set()
            if row.business_id in with_basic:
                family = session.get(Family, row.family_id)
                business = session.get(Business, row.business_id)
                assert family is not None and business is not None
                day = business_today(business, self.clock())
                scheduled = {staff.id for staff in scheduled_staff(session, family, day)}
            return row.business_id, row.id, scheduled

    def _email_business(self, inbound_email_id: int) -> int | None:
        with self.sessions() as session:
            return session.scalar(select(InboundEmail.business_id).where(InboundEmail.id == inbound_email_id))

    # -- the periodic check -----------------------------------------------------------------

    async def check_tabs(self) -> None:
        """Heartbeat every tab; end the streams whose person or day is no longer valid."""
        tabs = [tab for group in list(self.by_business.values()) for tab in group]
        if not tabs:
            return
        valid = await asyncio.to_thread(self._valid_staff, {tab.viewer.staff_id for tab in tabs})
        moment = self.clock()
        for tab in tabs:
            viewer = tab.viewer
            if valid.get(viewer.staff_id) != (viewer.fingerprint, viewer.senior):
                tab.end()  # deactivated, re-passworded or role changed: authenticate again
            elif viewer.ends_at is not None and moment >= viewer.ends_at:
                tab.end()  # their day with today's families is over
            else:
                tab.push(PING)

    def _valid_staff(self, staff_ids: set[int]) -> dict[int, tuple[str, bool]]:
        """For each active staff member: their current session fingerprint and seniority."""
        with self.sessions() as session:
            rows = session.execute(
                select(Staff.id, Staff.password_hash, Staff.role).where(Staff.id.in_(staff_ids), Staff.active.is_(True))
            ).all()
        key = self.settings.secret_key
        return {row.id: (password_fingerprint(key, row.password_hash), row.role in ("senior", "admin")) for row in rows}

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self.check_tabs()
            except Exception:  # the database may be down for a moment; try again next beat
                logger.exception("live: checking open tabs failed")

    # -- feeds ----------------------------------------------------------------------------

    async def _local_feed(self) -> None:
        loop = asyncio.get_running_loop()
        incoming: asyncio.Queue[Event] = asyncio.Queue()
        unsubscribe = local_broker.subscribe(lambda event: loop.call_soon_threadsafe(incoming.put_nowait, event))
        try:
            while True:
                await self._deliver_safely(await incoming.get())
        finally:
            unsubscribe()

    async def _redis_feed(self) -> None:
        """Subscribe to the channel; after losing Redis, resubscribe with backoff and resync."""
        import redis.asyncio as aioredis
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        url, channel = redis_channel(self.settings.live_url)
        delay, lost = 0.25, False
        while True:
            client = aioredis.Redis.from_url(url, health_check_interval=HEARTBEAT_SECONDS)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(channel)
                if lost:
                    logger.info("live: Redis is back; every tab catches up")
                    self.resync_all()
                delay, lost = 0.25, False
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        try:
                            event = json.loads(message["data"])
                        except ValueError:
                            continue
                        if isinstance(event, dict):
                            await self._deliver_safely(event)
            except (RedisConnectionError, RedisTimeoutError, OSError) as error:
                if not lost:
                    logger.warning("live: lost Redis (%s); retrying", type(error).__name__)
                lost = True
            finally:
                await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIS_RETRY_MAX_SECONDS)

    async def _deliver_safely(self, event: Event) -> None:
        try:
            await self.deliver(event)
        except Exception:  # e.g. the database is away: tabs catch up on their next hint
            logger.exception("live: delivering a %s hint failed", event.get("kind"))


class LiveApp:
    """The ASGI application for `/live` (and the lifespan that runs its hub)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.hub.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.hub.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != LIVE_PATH:
            await _plain(send, 404, "not found")
            return
        if scope["method"] != "GET":
            await _plain(send, 405, "method not allowed")
            return
        if self.hub.closing:
            await _plain(send, 503, "closing")
            return
        cookie = _cookie(scope, SESSION_COOKIE_NAME)
        viewer = await asyncio.to_thread(self.hub.identify, cookie) if cookie else None
        if viewer is None:
            await _plain(send, 401, "signed out")
            return
        if len(self.hub.by_staff.get(viewer.staff_id, ())) >= MAX_TABS_PER_STAFF:
            await _plain(send, 429, "too many open tabs")
            return
        tab = self.hub.open(viewer)
        watcher = asyncio.create_task(_end_on_disconnect(receive, tab))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-store"),
                        (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
                    ],
                }
            )
            await send({"type": "http.response.body", "body": f"retry: {RETRY_MS}\n".encode() + sse("hello"), "more_body": True})
            while (chunk := await tab.outbox.get()) is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            self.hub.close(tab)


async def _end_on_disconnect(receive: Receive, tab: Tab) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            tab.end()
            return


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            try:
                jar = SimpleCookie(value.decode("latin-1"))
            except CookieError:
                continue
            if name in jar:
                return jar[name].value
    return None


async def _plain(send: Send, status: int, text: str) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": text.encode()})
