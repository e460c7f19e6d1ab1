"""Signed attachment links: only this deployment's key makes them, for one purpose, for 30 days."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from flask import Flask
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.orm import Session

from outbound.links import attachment_token
from tests.portal.conftest import PNG, SECRET, Clock, World


def test_a_link_opens_the_attachment_for_thirty_days_then_never(timed_app: Flask, world: World, clock: Clock) -> None:
    client = timed_app.test_client()
    path = f"/attachments/{world.image.id}/{attachment_token(SECRET, world.image.id, now=clock.at)}"
    assert client.get(path).data == PNG
    clock.at += timedelta(days=29, hours=23)
    assert client.get(path).status_code == 200
    clock.at += timedelta(hours=2)
    assert client.get(path).status_code == 404


def test_links_cannot_be_made_without_the_key_or_moved_to_another_purpose_or_attachment(
    timed_app: Flask, world: World, db: Session
) -> None:
    client = timed_app.test_client()
    image = world.image.id
    # The bare HMAC of the id, as links were made before: anyone with the key's value can no
    # longer mint one without the purpose and the time.
    bare = hmac.new(SECRET.encode(), f"attachment:{image}".encode(), hashlib.sha256).hexdigest()[:32]
    other_purpose = URLSafeTimedSerializer(SECRET, salt="pawpost.password-reset").dumps(image)
    flask_session = URLSafeTimedSerializer(SECRET, salt="cookie-session").dumps(image)
    another_attachment = attachment_token(SECRET, world.other_image.id)
    for token in (bare, other_purpose, flask_session, another_attachment, attachment_token("not-our-key", image)):
        assert client.get(f"/attachments/{image}/{token}").status_code == 404, token
