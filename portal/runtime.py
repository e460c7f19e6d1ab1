"""What every view needs from the app: settings, the clock and one database session per request.

Kept apart from `create_app` so blueprints import these helpers without importing the factory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pawpost.settings import Settings

EXTENSION = "pawpost"


@dataclass(frozen=True)
class PortalState:
    """The per-app objects a request reaches through `current_app.extensions`."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]


def state() -> PortalState:
    return current_app.extensions[EXTENSION]


def settings() -> Settings:
    return state().settings


def now() -> datetime:
    """The current instant, from the clock the app was built with (tests may pass their own)."""
    return state().clock()


def db() -> Session:
    """The request's session, opened on first use and closed when the request ends."""
    if "db" not in g:
        g.db = state().sessions()
    return g.db


def close_db(_error: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
