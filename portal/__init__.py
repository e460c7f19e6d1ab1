"""The web portal: a Flask app factory with one blueprint per screen.

`create_app(settings)` builds everything from the settings passed in (nothing at import
time): its own engine and session factory, CSRF protection, security headers and the
outbound queue. Another business's ids answer 404, like ids that do not exist; a family of
one's own business that a basic staff member may not see answers 403 (see portal/errors.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from pawpost.settings import Settings
from threads.db import make_engine, make_session_factory
from threads.types import utcnow

SESSION_COOKIE_NAME = "pawpost_session"
# `portal.live` reads the same signed cookie, with the same lifetime.
SESSION_LIFETIME = timedelta(hours=14)


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> Flask:
    """The portal for one deployment; `clock` lets tests move time."""
    from outbound.queue import configure_queue

    from portal import (
        accounts,
        announcements,
        api,
        api_conversations,
        api_directory,
        api_keys,
        api_webhooks,
        attachments,
        audit,
        auth,
        calendar,
        csv_import,
        devmail,
        errors,
        families,
        health,
        inbox,
        metrics,
        parents,
        quarantine,
        reply_address,
        saved_replies,
        schedule,
        search,
        security,
        staff,
        threads,
        two_factor,
        views,
        webhooks,
    )
    from portal.runtime import EXTENSION, PortalState, close_db

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME=SESSION_COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # The server-side session ends 14 hours after sign-in whatever the cookie says, so
        # re-signing an unchanged cookie on every response (Flask's default) bought nothing.
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=settings.max_message_bytes,
        # The portal stays open all day: a token lives as long as the session, not an hour.
        WTF_CSRF_TIME_LIMIT=None,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    engine = make_engine(settings.database_url)
    reading = None
    if engine.dialect.name == "postgresql":
        # `reads_only` pages share the pool in autocommit (see portal.runtime).
        reading = make_session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
        event.listen(engine, "connect", _no_prepared_statements)
    app.extensions[EXTENSION] = PortalState(
        settings=settings, engine=engine, sessions=make_session_factory(engine), clock=clock, reading_sessions=reading
    )
    configure_queue(settings)
    if settings.trusted_proxies:
        # Only the hops the operator vouches for: X-Forwarded-For values beyond them are the
        # client's own words (anyone can send the header), so they never pick the address.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)  # type: ignore[method-assign]
    csrf = CSRFProtect(app)
    # RFC 8058 one-click unsubscribe: mail providers post it without cookies (see portal.parents).
    csrf.exempt("portal.parents.one_click")
    # The API authenticates with bearer keys, never cookies: nothing for a forged form to ride on.
    csrf.exempt(api.bp)
    app.teardown_appcontext(close_db)
    security.install(app)
    errors.install(app)
    views.install(app)
    blueprints = (auth, health, metrics, inbox, threads, schedule, attachments, quarantine, devmail)
    blueprints += (staff, accounts, two_factor, families, calendar, csv_import, reply_address, audit, parents, search)
    blueprints += (saved_replies, announcements, api_keys, webhooks, api)
    _ = (api_directory, api_conversations, api_webhooks)  # importing them added their operations to api.bp
    for module in blueprints:
        app.register_blueprint(module.bp)
    return app


def _no_prepared_statements(dbapi_connection: Any, _record: Any) -> None:
    """psycopg prepares a statement run five times on a connection, but forgets them all at
    each ROLLBACK (and then sends DEALLOCATE ALL, a round trip). Nearly every portal request
    ends with one, so nothing stayed prepared anyway; with `reads_only` pages in autocommit
    in the same pool, statements would be prepared there only to cost that round trip on
    the next request that rolls back."""
    dbapi_connection.prepare_threshold = None
