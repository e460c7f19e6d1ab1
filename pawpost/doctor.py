"""`pawpost doctor`: is this deployment configured and can it reach what it needs?

Each check returns one line an operator can act on. `fail` means Pawpost will not work
(or is unsafe); `warn` means it works but production needs attention.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from alembic.script import ScriptDirectory
from sqlalchemy import text

from outbound.live import redis_round_trip
from outbound.queue import configure_queue
from outbound.signing import dns_record
from outbound.transport import check_relay
from pawpost.settings import Settings, random_secret
from threads import migrate
from threads.db import make_engine

logger = logging.getLogger(__name__)

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def check_secret(settings: Settings) -> Check:
    if settings.secret_key_is_default:
        return Check(
            "secret key",
            "fail",
            f"PAWPOST_SECRET_KEY is not set, so web, smtp and worker refuse to start: set a long random value, e.g. {random_secret()}",
        )
    if len(settings.secret_key) < 32:
        return Check("secret key", "warn", "PAWPOST_SECRET_KEY is shorter than 32 characters")
    return Check("secret key", "ok", "set")


def check_database(settings: Settings) -> Check:
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        backend = engine.dialect.name
    except Exception as error:  # any failure here is what the operator must see
        return Check("database", "fail", f"unreachable: {_first_line(error)}")
    finally:
        engine.dispose()
    applied = set((migrate.current_revision(settings.database_url) or "").split(", ")) - {""}
    expected = set(ScriptDirectory.from_config(migrate.alembic_config(settings.database_url)).get_heads())
    if applied != expected:
        return Check("database", "fail", f"{backend} reachable but not migrated: run `pawpost db upgrade`")
    return Check("database", "ok", f"{backend} reachable, schema current")


def check_queue(settings: Settings) -> Check:
    try:
        queue = configure_queue(settings)
        pending = queue.pending_count()
    except Exception as error:  # redis down, sqlite file unwritable…
        return Check("queue", "fail", f"unreachable: {_first_line(error)}")
    return Check("queue", "ok", f"reachable, {pending} task(s) waiting")


def check_outbound(settings: Settings) -> Check:
    try:
        detail = check_relay(settings.outbound_url)
    except Exception as error:
        return Check("outbound mail", "fail", f"{_first_line(error)}")
    if settings.uses_maildir:
        return Check("outbound mail", "warn", f"{detail} (development: nothing leaves this machine)")
    return Check("outbound mail", "ok", detail)


def check_reply_domain(settings: Settings) -> Check:
    domain = settings.reply_domain
    advice = (
        f"publish `{domain}. MX 10 <this host>` so replies reach `pawpost smtp`, "
        f"and SPF/DKIM for {settings.mail_domain} at your relay"
    )
    if domain.endswith((".localhost", ".test", ".example", ".invalid")) or domain == "localhost":
        return Check("reply domain", "warn", f"{domain} is not routable on the internet; {advice}")
    return Check("reply domain", "ok", advice)


def check_dkim(settings: Settings) -> Check:
    """The TXT record to publish for Pawpost's own DKIM key, or who must sign without one."""
    try:
        record = dns_record(settings)
    except Exception as error:  # unreadable or malformed key file
        return Check("dkim", "fail", f"PAWPOST_DKIM_KEY_FILE unusable: {_first_line(error)}")
    if record is None:
        return Check(
            "dkim", "warn",
            "Pawpost does not sign: your relay must DKIM-sign (covering List-Unsubscribe), or set "
            "PAWPOST_DKIM_SELECTOR, PAWPOST_DKIM_DOMAIN and PAWPOST_DKIM_KEY_FILE",
        )
    name, value = record
    return Check("dkim", "ok", f'signing; publish TXT `{name}` "{value}"')


def check_live(settings: Settings) -> Check:
    """Where live hints travel: a Redis pub/sub round trip, and whether `pawpost live` listens."""
    if settings.live_is_local:
        if settings.queue_url.startswith(("redis:", "rediss:")):
            return Check(
                "live updates", "warn",
                "PAWPOST_LIVE_URL=local with a Redis queue: hints from separate smtp/worker processes never "
                "reach open tabs (they fall back to slow polling); set PAWPOST_LIVE_URL to the Redis URL",
            )
        return Check("live updates", "ok", "in-process broker: `pawpost up` streams to tabs itself, no Redis needed")
    try:
        listeners = redis_round_trip(settings.live_url)
    except Exception as error:  # refused, timed out, wrong password…
        return Check("live updates", "fail", f"Redis pub/sub unreachable: {_first_line(error)} (tabs fall back to slow polling)")
    if listeners == 0:
        return Check("live updates", "warn", "Redis pub/sub works, but no `pawpost live` process is subscribed: start one")
    return Check("live updates", "ok", f"Redis pub/sub works; {listeners} `pawpost live` process(es) subscribed")


CHECKS: tuple[Callable[[Settings], Check], ...] = (
    check_secret,
    check_database,
    check_queue,
    check_live,
    check_outbound,
    check_reply_domain,
    check_dkim,
)


def run_checks(settings: Settings) -> list[Check]:
    return [check(settings) for check in CHECKS]


def _first_line(error: BaseException) -> str:
    text_ = str(getattr(error, "orig", None) or error).strip()
    return (text_.splitlines() or [error.__class__.__name__])[0]
