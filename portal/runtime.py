"""What every view needs from the app: settings, the clock and one database session per request.

Kept apart from `create_app` so blueprints import these helpers without importing the factory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from flask import current_app, g, has_request_context, request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pawpost.settings import Settings
from portal.caught_up import CaughtUp
from threads.models import Staff

EXTENSION = "pawpost"


@dataclass(frozen=True)
class PortalState:
    """The per-app objects a request reaches through `current_app.extensions`."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    caught_up: CaughtUp = field(default_factory=CaughtUp)
    # PostgreSQL only: sessions whose statements each commit on their own, for `reads_only` pages.
    reading_sessions: sessionmaker[Session] | None = None


def state() -> PortalState:
    return current_app.extensions[EXTENSION]


def settings() -> Settings:
    return state().settings


def now() -> datetime:
    """The current instant, from the clock the app was built with (tests may pass their own)."""
    return state().clock()


def tab_unread(staff: Staff) -> bool:
    """The tab dot for the signed-in staff member (see `portal.caught_up`)."""
    return state().caught_up.tab_unread(db(), staff, now())


View = TypeVar("View", bound=Callable[..., Any])


def reads_only(view: View) -> View:
    """Mark a GET view that writes nothing (the signed-in frame's occasional "last seen"
    update commits at once anyway). On PostgreSQL its request runs each statement in
    autocommit: under READ COMMITTED every statement of a transaction takes its own snapshot
    already, so a page sees the same rows, without the BEGIN and ROLLBACK round trips
    around them (two of a small page's five)."""
    view.reads_only = True  # type: ignore[attr-defined]
    return view


def db() -> Session:
    """The request's session, opened on first use and closed when the request ends."""
    if "db" not in g:
        portal = state()
        g.db = (portal.reading_sessions or portal.sessions)() if _reads_only() else portal.sessions()
    return g.db


def _reads_only() -> bool:
    if not has_request_context() or request.method not in ("GET", "HEAD") or request.endpoint is None:
        return False
    return getattr(current_app.view_functions.get(request.endpoint), "reads_only", False)


def close_db(_error: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
