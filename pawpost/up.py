"""`pawpost up`: the SMTP server, the queue worker and the portal in one process.

This is the embedded default a newcomer runs: SQLite, huey on SQLite and outbound mail in a
local Maildir under `PAWPOST_DATA_DIR`. Production runs the same parts as separate processes
(`pawpost smtp`, `pawpost worker`, `pawpost web`), so nothing here is needed there.
"""

from __future__ import annotations

import logging
import shlex
import signal
import sys
import threading
import time
from contextlib import ExitStack
from typing import Any

import click
from sqlalchemy import select

from inbound.server import start_smtp_server
from outbound.cli import build_consumer
from pawpost.settings import Settings
from portal import create_app
from portal.live_server import background_portal
from threads import migrate
from threads.db import make_engine, make_session_factory
from threads.demo import DEMO_SLUG, describe_demo, seed_demo
from threads.models import Business
from threads.schedule import business_today
from threads.types import utcnow

logger = logging.getLogger(__name__)

_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@.+-_:[]")


def ensure_demo(settings: Settings) -> dict[str, Any]:
    """Migrate, seed the demo business when it is missing, and describe it."""
    migrate.upgrade(settings.database_url, secret_key=lambda: settings.secret_key)
    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        now = utcnow()
        with factory() as session, session.begin():
            business_id = session.scalar(select(Business.id).where(Business.slug == DEMO_SLUG))
            if business_id is None:
                business_id = seed_demo(session, now=now, secret_key=settings.secret_key, mail_domain=settings.mail_domain)
        with factory() as session:
            business = session.get(Business, business_id)
            assert business is not None
            return describe_demo(
                session,
                business_id,
                today=business_today(business, now),
                secret_key=settings.secret_key,
                reply_domain=settings.reply_domain,
            )
    finally:
        engine.dispose()


def reply_command(smtp_host: str, smtp_port: int, sender: str, reply_address: str, python: str) -> str:
    """A one-line shell command that sends a reply as a parent into the running server."""
    for value in (smtp_host, sender, reply_address):
        if not set(value) <= _SAFE:
            raise ValueError(f"unexpected character in {value!r}")
    program = (
        "import smtplib; from email.message import EmailMessage; m = EmailMessage(); "
        f"m['From'] = '{sender}'; m['To'] = '{reply_address}'; m['Subject'] = 'Re: hello'; "
        "m.set_content('Thanks! Bella loved her walk today.'); "
        f"smtplib.SMTP('{smtp_host}', {smtp_port}).send_message(m)"
    )
    # Every value is checked above, so double quotes need no escaping inside.
    return f'{shlex.quote(python)} -c "{program}"'


def banner(demo: dict[str, Any], web_url: str, smtp: tuple[str, int], settings: Settings) -> str:
    family = next((f for f in demo["families"] if f["scheduled_staff_today"]), demo["families"][0])
    parent = family["contacts"][0]
    lines = [
        "",
        f"Pawpost is up: {demo['business']['name']}",
        f"  portal       {web_url}",
        f"  smtp         {smtp[0]}:{smtp[1]} (replies for @{settings.reply_domain})",
        f"  sent mail    {settings.maildir_path or settings.outbound_url}"
        + (f" (shown at {web_url}/dev/mailbox)" if settings.uses_maildir else ""),
        "",
        "Sign in as:",
    ]
    lines += [f"  {s['role']:<6} {s['email']:<28} {s['password']}" for s in demo["staff"]]
    lines += [
        "",
        f"{family['name']}: reply address {family['reply_address']}",
        f"Reply as {parent['name']} <{parent['email']}>:",
        "  " + reply_command(smtp[0], smtp[1], parent["email"], family["reply_address"], sys.executable),
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def run_up(settings: Settings, *, stop: threading.Event | None = None) -> None:
    """Start every part, print how to use them, and stop them all on SIGINT or SIGTERM."""
    stop = stop or threading.Event()
    # One process, one terminal: per-task queue chatter would bury the banner.
    logging.getLogger("huey").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    demo = ensure_demo(settings)
    previous = {}
    # The app and the consumer each configure the one queue; both do so before anything
    # runs, so the SMTP server, the portal and the worker all share the final storage.
    app = create_app(settings)
    consumer = build_consumer(settings, workers=2)
    smtp, smtp_cleanup = start_smtp_server(settings)
    consumer.start()
    web = ExitStack()
    try:
        # The portal and its live stream share one uvicorn server (see portal.live_server):
        # hints travel through the in-process broker from the SMTP, worker and portal parts.
        host, port = web.enter_context(background_portal(settings, flask_app=app))
        web_url = f"http://{host}:{port}"
        # Installed once every part runs, and before the banner: whoever reads the banner
        # may press Ctrl-C at once (and a shell may have started us with SIGINT ignored).
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda signum, _frame: stop.set())
        click.echo(banner(demo, web_url, (smtp.bound_host, smtp.bound_port), settings), err=False)
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
        click.echo("stopping…")
    finally:
        started = time.monotonic()
        web.close()
        smtp.stop_gracefully(3)
        smtp_cleanup()
        consumer.stop(graceful=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logger.info("stopped in %.1f s", time.monotonic() - started)
