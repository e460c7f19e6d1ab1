"""Serving `/live` on uvicorn: alone (`pawpost live`) or beside the portal in one process.

`pawpost live` serves only the stream; a proxy sends `/live` to it and everything else
to `pawpost web` (gunicorn), so both share one origin and the session cookie. `pawpost up`
and the browser tests serve both from one uvicorn server: the Flask app runs in a2wsgi's
thread pool, `/live` on the event loop. Either way, stopping ends every stream with `bye`
before uvicorn waits for connections, so a deploy never waits for idle tabs to leave.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from a2wsgi import WSGIMiddleware
from flask import Flask

from pawpost.settings import Settings
from portal import create_app
from portal.live import LIVE_PATH, Hub, LiveApp, Receive, Scope, Send
from threads.db import make_engine, make_session_factory

logger = logging.getLogger(__name__)

# A stream that has not finished this long after `bye` is cut.
GRACEFUL_SECONDS = 5
# Threads for the portal's WSGI views when uvicorn serves them (`pawpost up`).
PORTAL_THREADS = 8


class LiveServer(uvicorn.Server):
    """uvicorn that ends the streams first when asked to stop (signal or `should_exit`)."""

    def __init__(self, config: uvicorn.Config, hub: Hub) -> None:
        super().__init__(config)
        self.hub = hub

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Stop on SIGINT/SIGTERM and exit 0 like every other `pawpost` process (uvicorn
        would re-raise the signal once stopped, so the process would die of it)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.hub.close_all()
        await asyncio.sleep(0)  # let each stream send its `bye`
        await super().shutdown(sockets)


def make_hub(settings: Settings) -> Hub:
    engine = make_engine(settings.database_url)
    return Hub(settings, make_session_factory(engine))


def with_portal(flask_app: Flask, live: LiveApp) -> Any:
    """One ASGI app: `/live` (and the lifespan) on the loop, every other path to Flask."""
    portal = WSGIMiddleware(flask_app, workers=PORTAL_THREADS)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or (scope["type"] == "http" and scope["path"] == LIVE_PATH):
            await live(scope, receive, send)
        elif scope["type"] == "http":
            await portal(scope, receive, send)

    return app


def _config(app: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,  # the entry point configures logging
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        # The streams' own heartbeat keeps them alive; this is for idle keep-alive sockets.
        timeout_keep_alive=5,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


def serve_live(settings: Settings) -> None:
    """`pawpost live`: the stream alone on `settings.live_listen`, until SIGTERM or Ctrl-C."""
    if settings.live_is_local:
        raise SystemExit(
            "pawpost live needs Redis to hear the other processes: set PAWPOST_LIVE_URL or a redis PAWPOST_QUEUE_URL"
        )
    hub = make_hub(settings)
    host, port = settings.live_listen
    sock = _bind(host, port)
    logger.info("live stream listening on http://%s:%s%s", host, sock.getsockname()[1], LIVE_PATH)
    LiveServer(_config(LiveApp(hub)), hub).run(sockets=[sock])


@contextmanager
def background_portal(settings: Settings, *, flask_app: Flask | None = None) -> Iterator[tuple[str, int]]:
    """The portal and its stream on one uvicorn server in a background thread.

    For `pawpost up` and tests: yields the bound (host, port) (`settings.web_listen` may
    ask for port 0); on exit ends the streams, stops, and releases the database engines.
    """
    app = flask_app or create_app(settings)
    hub = make_hub(settings)
    host, port = settings.web_listen
    sock = _bind(host, port)
    server = LiveServer(_config(with_portal(app, LiveApp(hub))), hub)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="pawpost-web", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the portal server did not start")
            threading.Event().wait(0.02)
        logger.info("portal listening on http://%s:%s", host, sock.getsockname()[1])
        yield host, sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=GRACEFUL_SECONDS + 5)
        sock.close()
        hub.sessions.kw["bind"].dispose()
        if flask_app is None:
            app.extensions["pawpost"].engine.dispose()
