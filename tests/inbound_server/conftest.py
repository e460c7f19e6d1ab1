"""A real Pawpost SMTP server on an ephemeral port, over a real SQLite file or PostgreSQL.

The queue is `memory://`: no worker can read it, so the server processes each email in
place right after the commit that stores it and before its `250`, which makes every
outcome visible when the SMTP conversation ends. test_worker.py runs the production path
(a queue, then a worker) on a huey SQLite file and on Redis.
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from inbound.server import running_smtp_server
from outbound.queue import configure_queue
from pawpost.settings import Settings
from tests.factories import MAIL_DOMAIN, make_business, make_family, make_staff
from threads.addresses import reply_address
from threads.db import make_engine, make_session_factory, normalise_url
from threads.models import Thread


def make_settings(database_url: str, data_dir: Path, **env: str) -> Settings:
    values = {
        "PAWPOST_DATA_DIR": str(data_dir),
        "PAWPOST_DATABASE_URL": database_url,
        "PAWPOST_QUEUE_URL": "memory://",
        "PAWPOST_REPLY_DOMAIN": MAIL_DOMAIN,
        "PAWPOST_SMTP_LISTEN": "127.0.0.1:0",
        "PAWPOST_SECRET_KEY": "inbound-tests-secret-key-0123456789",
    }
    values.update(env)
    return Settings.from_env(values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    settings = make_settings(database_url, tmp_path)
    configure_queue(settings)
    return settings


@pytest.fixture
def smtp(settings: Settings) -> Iterator[tuple[str, int]]:
    with running_smtp_server(settings) as address:
        yield address


@dataclass(frozen=True)
class World:
    """One business with a senior and a basic staff member and one two-parent family."""

    business_id: int
    thread_id: int
    family_id: int
    reply_to: str
    primary_id: int
    primary_email: str
    secondary_id: int
    secondary_email: str
    senior_id: int
    senior_email: str
    basic_id: int
    basic_email: str
    root_message_id: str


@pytest.fixture
def world(engine: Engine) -> World:
    with Session(engine) as session, session.begin():
        business = make_business(session)
        senior = make_staff(session, business, role="senior", name="Morgan Lee")
        basic = make_staff(session, business, role="basic", name="Casey Park")
        family = make_family(session, business, name="Johnson", contacts=("Emma Johnson", "Liam Johnson"))
        thread = session.query(Thread).filter_by(family_id=family.id).one()
        primary, secondary = family.contacts
        return World(
            business_id=business.id,
            thread_id=thread.id,
            family_id=family.id,
            reply_to=reply_address(thread, MAIL_DOMAIN),
            primary_id=primary.id,
            primary_email=primary.email or "",
            secondary_id=secondary.id,
            secondary_email=secondary.email or "",
            senior_id=senior.id,
            senior_email=senior.email,
            basic_id=basic.id,
            basic_email=basic.email,
            root_message_id=thread.root_message_id,
        )


class _Pipe(threading.Thread):
    def __init__(self, source: socket.socket, target: socket.socket) -> None:
        super().__init__(daemon=True)
        self.source, self.target = source, target

    def run(self) -> None:
        try:
            while chunk := self.source.recv(65536):
                self.target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (self.source, self.target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class TcpProxy:
    """A real TCP hop between the server and PostgreSQL that a test can cut and restore."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.connections += [client, upstream]
            _Pipe(client, upstream).start()
            _Pipe(upstream, client).start()

    def cut(self) -> None:
        self.up = False
        with self.lock:
            for sock in self.connections:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.connections.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@dataclass
class Outage:
    """The server's database, which the test can take away and give back.

    PostgreSQL: every connection goes through a TCP proxy that the test cuts. SQLite:
    another connection holds the write lock (the server waits only briefly for it).
    """

    session_factory: sessionmaker[Session]
    begin: Callable[[], None]
    end: Callable[[], None]


@pytest.fixture
def outage(database_url: str) -> Iterator[Outage]:
    url = make_url(normalise_url(database_url))
    if url.get_backend_name() == "sqlite":
        engine = make_engine(database_url, hide_parameters=True)
        event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA busy_timeout=200"))
        locker = sqlite3.connect(url.database or "", isolation_level=None, check_same_thread=False)
        yield Outage(
            make_session_factory(engine),
            lambda: locker.execute("BEGIN EXCLUSIVE"),
            lambda: locker.execute("ROLLBACK"),
        )
        locker.close()
    else:
        proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        engine = make_engine(proxied, hide_parameters=True)
        yield Outage(make_session_factory(engine), proxy.cut, proxy.restore)
        proxy.close()
    engine.dispose()
