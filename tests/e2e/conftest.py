"""The e2e stack: its own PostgreSQL database, one Redis db, a mail relay, Chromium, and
`pawpost smtp`, `pawpost worker`, `pawpost web` and `pawpost live` as separate processes
(live hints travel on a Redis pub/sub channel of the run's own).

The database is created for the run (`pawpost_e2e_<random>`) on the server of
PAWPOST_TEST_DATABASE_URL and dropped afterwards, so it never meets other tests' data;
Redis uses the db number of PAWPOST_TEST_REDIS_URL and only that db is flushed. A missing
service skips with the reason, except under CI=true, where it fails (`require`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from tests.browser import launched_chromium
from tests.conftest import PG_URL, REDIS_URL, postgres_reason, require
from tests.e2e.processes import Service, free_port, http_ok, port_open, run_cli, run_json, smtp_answers, stop_all
from tests.e2e.relay import RecordingRelay, running_relay

try:
    from playwright.sync_api import Browser
except ImportError:  # `launched_chromium` reports it
    pass

NOTIFY_DELAY_SECONDS = 2
REPLY_DOMAIN = "reply.pawpost.test"
READY_SECONDS = 30.0

SERVICES = pytest.StashKey[list[Service]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed step shows what each Pawpost process logged (setup or story)."""
    report = yield
    if report.failed:
        for service in item.stash.get(SERVICES, []):
            report.sections.append((f"pawpost {service.name} log", service.log_tail()))
    return report


def _server_url(url: str, database: str) -> str:
    """The same server and credentials, another database; psycopg wants plain `postgresql://`."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, f"/{database}", parts.query, ""))


@pytest.fixture
def e2e_database_url() -> Iterator[str]:
    """A fresh, empty database of our own on the test server; dropped afterwards."""
    reason = postgres_reason()
    require(reason is None, reason or "")
    name = f"pawpost_e2e_{secrets.token_hex(6)}"
    maintenance = _server_url(PG_URL, urlsplit(PG_URL).path.lstrip("/") or "postgres")
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _server_url(PG_URL, name)
    finally:
        with psycopg.connect(maintenance, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def e2e_queue_url() -> Iterator[str]:
    """The Redis db of PAWPOST_TEST_REDIS_URL, flushed before and after (that db only)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        require(False, f"Redis unreachable at {REDIS_URL}: {error}")
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def relay() -> Iterator[tuple[RecordingRelay, int]]:
    with running_relay() as found:
        yield found


@pytest.fixture
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@dataclass
class Stack:
    """Everything the story needs to reach the running deployment."""

    env: dict[str, str]
    database_url: str
    demo: dict[str, Any]
    base_url: str
    smtp: tuple[str, int]
    relay: RecordingRelay
    reply_domain: str
    live: tuple[str, int]  # `pawpost live`: GET /live, server-sent events


def _environment(
    tmp_path: Path, database_url: str, queue_url: str, relay_port: int, web_port: int, live_port: int
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PAWPOST_")}
    env.update(
        {
            "PAWPOST_DATA_DIR": str(tmp_path / "data"),
            "PAWPOST_DATABASE_URL": database_url,
            "PAWPOST_QUEUE_URL": queue_url,
            "PAWPOST_SMTP_LISTEN": "127.0.0.1:0",
            "PAWPOST_WEB_LISTEN": f"127.0.0.1:{web_port}",
            # Pub/sub channels span the Redis server: a channel of this run's own.
            "PAWPOST_LIVE_URL": f"{queue_url}?channel=pawpost-e2e-{secrets.token_hex(6)}",
            "PAWPOST_LIVE_LISTEN": f"127.0.0.1:{live_port}",
            "PAWPOST_OUTBOUND_URL": f"smtp://127.0.0.1:{relay_port}",
            "PAWPOST_NOTIFY_DELAY_SECONDS": str(NOTIFY_DELAY_SECONDS),
            "PAWPOST_REPLY_DOMAIN": REPLY_DOMAIN,
            "PAWPOST_SECRET_KEY": secrets.token_urlsafe(32),
            "PYTHONUNBUFFERED": "1",
            # gunicorn puts its control socket here (else ~/.gunicorn, shared by every run).
            "XDG_RUNTIME_DIR": str(tmp_path),
        }
    )
    return env


@pytest.fixture
def stack(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    e2e_database_url: str,
    e2e_queue_url: str,
    relay: tuple[RecordingRelay, int],
) -> Iterator[Stack]:
    """Migrated and seeded with the demo, then the four processes, each answering."""
    recorder, relay_port = relay
    web_port, live_port = free_port(), free_port()
    env = _environment(tmp_path, e2e_database_url, e2e_queue_url, relay_port, web_port, live_port)
    run_cli(env, "db", "upgrade")
    demo = run_json(env, "demo")

    services = [
        Service("smtp", ("smtp",), tmp_path / "smtp.log"),
        Service("worker", ("worker", "--workers", "2"), tmp_path / "worker.log"),
        Service("web", ("web", "--workers", "2", "--threads", "4"), tmp_path / "web.log"),
        Service("live", ("live",), tmp_path / "live.log"),
    ]
    request.node.stash[SERVICES] = services
    try:
        for service in services:
            service.start(env)
        smtp, worker, web, live = services
        bound = smtp.wait_for_log(r"smtp listening on ([\d.]+):(\d+)", READY_SECONDS)
        smtp_address = (bound.group(1), int(bound.group(2)))
        smtp.wait_until(lambda: smtp_answers(*smtp_address), "answering EHLO", READY_SECONDS)
        base_url = f"http://127.0.0.1:{web_port}"
        web.wait_until(lambda: http_ok(base_url + "/healthz"), "GET /healthz answering 200", READY_SECONDS)
        worker.wait_for_log(r"Huey consumer started", READY_SECONDS)
        live_address = ("127.0.0.1", live_port)
        live.wait_until(lambda: port_open(*live_address), "listening", READY_SECONDS)
        yield Stack(env, e2e_database_url, demo, base_url, smtp_address, recorder, REPLY_DOMAIN, live_address)
    finally:
        codes = stop_all(services)
    unclean = {name: code for name, code in codes.items() if code not in (0, None)}
    assert not unclean, f"processes did not stop cleanly on SIGTERM: {unclean}"
