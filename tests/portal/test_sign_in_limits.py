"""Sign-in limits behind a reverse proxy: per (account, client) and per client, never per account."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from portal import create_app
from portal.auth import client_key
from tests.factories import PASSWORD
from tests.portal.conftest import World, csrf_token, portal_settings_for
from threads.models import SignInFailure
from threads.types import utcnow

PROXY = "10.0.0.2"  # what the portal sees as the peer behind a reverse proxy


@pytest.fixture
def proxied_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(portal_settings_for(database_url, tmp_path, PAWPOST_TRUSTED_PROXIES="1"))
    yield app
    app.extensions["pawpost"].engine.dispose()


def browser(app: Flask, forwarded_for: str | None) -> FlaskClient:
    """A client whose requests reach the portal through the proxy, which adds X-Forwarded-For."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = PROXY
    if forwarded_for is not None:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client


def attempt(client: FlaskClient, email: str, password: str) -> int:
    return client.post("/signin", data={"email": email, "password": password, "csrf_token": csrf_token(client, "/signin")}).status_code


def test_a_strangers_failures_never_lock_the_owner_out(proxied_app: Flask, world: World, db: Session) -> None:
    db.rollback()
    stranger, owner = browser(proxied_app, "203.0.113.9"), browser(proxied_app, "198.51.100.7")
    for _ in range(5):
        assert attempt(stranger, "sam@a.test", "guess guess guess") == 401
    assert attempt(stranger, "sam@a.test", PASSWORD) == 429  # the guesser is stopped, right password or not
    assert attempt(owner, "sam@a.test", PASSWORD) == 302  # the owner, elsewhere, signs in
    assert attempt(stranger, "sam@a.test", "guess guess guess") == 429  # and the owner's success did not free the stranger


def test_one_client_is_stopped_across_accounts_and_others_are_not(proxied_app: Flask, world: World, db: Session) -> None:
    now = utcnow()
    db.add_all(SignInFailure(email=f"user{n}@a.test", remote_addr="203.0.113.9", at=now - timedelta(minutes=1)) for n in range(49))
    db.commit()
    sprayer, colleague = browser(proxied_app, "203.0.113.9"), browser(proxied_app, "198.51.100.7")
    assert attempt(sprayer, "sky@a.test", "guess guess guess") == 401  # the 50th failure
    assert attempt(sprayer, "ada@a.test", PASSWORD) == 429
    assert attempt(colleague, "ada@a.test", PASSWORD) == 302
    # Failures older than the window no longer count.
    db.query(SignInFailure).update({SignInFailure.at: now - timedelta(minutes=16)})
    db.commit()
    assert attempt(sprayer, "ada@a.test", PASSWORD) == 302


def test_forwarded_for_counts_only_through_trusted_hops(app: Flask, proxied_app: Flask, world: World, db: Session) -> None:
    db.rollback()
    # Without PAWPOST_TRUSTED_PROXIES the header is anyone's to write: changing it buys nothing.
    direct = app.test_client()
    for n in range(5):
        direct.environ_base["HTTP_X_FORWARDED_FOR"] = f"192.0.2.{n}"
        assert attempt(direct, "sam@a.test", "guess guess guess") == 401
    direct.environ_base["HTTP_X_FORWARDED_FOR"] = "192.0.2.99"
    assert attempt(direct, "sam@a.test", PASSWORD) == 429
    # Behind one trusted proxy, only the address the proxy appended counts, not what the
    # client wrote before it.
    spoofer = browser(proxied_app, "192.0.2.200, 203.0.113.50")
    for n in range(5):
        spoofer.environ_base["HTTP_X_FORWARDED_FOR"] = f"192.0.2.{100 + n}, 203.0.113.50"
        assert attempt(spoofer, "sky@a.test", "guess guess guess") == 401
    assert attempt(spoofer, "sky@a.test", PASSWORD) == 429


def test_an_ipv6_client_is_one_client_across_its_network() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.9") == client_key("203.0.113.9") == "203.0.113.9"
