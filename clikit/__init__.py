"""What every `pawpost` subcommand shares: settings per command, one transaction, output.

The parts (inbound/, outbound/, portal/) define their own subcommands and `pawpost/cli.py`
assembles them into one `pawpost` command. Those helpers live here, apart from both, so that
the parts take nothing from the composition root but its settings and `pawpost/cli.py` is the
only module that imports them all. This package imports none of the parts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from pawpost.settings import Settings
from threads.db import make_engine, make_session_factory
from threads.models import Business


def load_settings(ctx: click.Context) -> Settings:
    """The settings, built once per command from the environment."""
    root = ctx.find_root()
    if "settings" not in root.meta:
        root.meta["settings"] = Settings.from_env()
    return root.meta["settings"]


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """One transaction for one command: commit on success, roll back on any error."""
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            yield session
    finally:
        engine.dispose()


def business_by_slug(session: Session, slug: str) -> Business:
    """The business a `--business SLUG` option names, or one clear line listing the known ones."""
    business = session.scalar(select(Business).where(Business.slug == slug))
    if business is None:
        known = ", ".join(session.scalars(select(Business.slug).order_by(Business.slug))) or "none"
        raise click.ClickException(f"no business {slug!r}; known: {known}")
    return business


def emit(data: Any, as_json: bool, human: str) -> None:
    """JSON for `--json`, else the human lines."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str) if as_json else human)
