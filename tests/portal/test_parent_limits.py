"""The parent page is rate-limited per contact (issue 14, point 1): a script holding a link
cannot hammer the database; the next minute it opens again."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy.orm import Session

from portal import parents
from tests.portal.conftest import Clock, World
from tests.portal.test_parent_page import _digest_link


def test_views_beyond_the_limit_answer_429_until_the_window_passes(
    timed_app: Flask, world: World, db: Session, clock: Clock, monkeypatch
) -> None:
    monkeypatch.setattr(parents, "VIEWS_PER_MINUTE", 3)
    client = timed_app.test_client()
    link = _digest_link(timed_app, db, world, clock)
    assert [client.get(link).status_code for _ in range(4)] == [200, 200, 200, 429]
    clock.at += timedelta(minutes=2)
    assert client.get(link).status_code == 200
