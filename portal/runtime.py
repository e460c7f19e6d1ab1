"""What every view needs from the app: settings, the clock and one database session per request.

Kept apart from `create_app` so blueprints import these helpers without importing the factory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app, g
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


def db() -> Session:
    """The request's session, opened on first use and closed when the request ends."""
    if "db" not in g:
        g.db = state().sessions()
    return g.db


def close_db(_error: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
