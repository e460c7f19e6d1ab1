"""Signing in through the real form (Argon2 and all), for the tests about accounts."""

from __future__ import annotations

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.portal.conftest import csrf_token


def sign_in(client: FlaskClient, email: str, password: str, *, headers: dict[str, str] | None = None, **extra: str) -> TestResponse:
    data = {"email": email, "password": password, "csrf_token": csrf_token(client, "/signin"), **extra}
    return client.post("/signin", data=data, headers=headers or {})
