"""`GET /metrics` counts what happened, from the database, in Prometheus text format."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from portal import create_app
from tests.portal.conftest import World, portal_settings_for
from threads.models import OutboundEmail
from threads.types import utcnow


TOKEN = "scraper-token-0123456789"


@pytest.fixture
def scraper(database_url: str, tmp_path: Path) -> Iterator[FlaskClient]:
    app = create_app(portal_settings_for(database_url, tmp_path, PAWPOST_METRICS_TOKEN=TOKEN))
    yield app.test_client()
    app.extensions["pawpost"].engine.dispose()


def samples(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_count_inbound_outcomes_outbox_states_and_lag(scraper: FlaskClient, world: World, db: Session) -> None:
    client = scraper
    before = samples(client)
    # Deployment-wide: the world holds two emails in its business and one in another.
    assert before[("pawpost_inbound_emails_total", (("outcome", "quarantined"),))] == 3
    for index, state in enumerate(("sent", "sent", "queued")):
        db.add(
            OutboundEmail(
                business_id=world.business.id,
                thread_id=world.thread.id,
                kind="digest",
                dedupe_key=f"metrics-{index}",
                recipient_kind="contact",
                recipient_id=1,
                recipient_email=f"p{index}@parents.test",
                message_id_header=f"metrics.{index}@reply.test",
                subject="s",
                state=state,
                created_at=utcnow() - timedelta(minutes=10),
            )
        )
    db.commit()
    after = samples(client)
    assert after[("pawpost_digests_sent_total", ())] == 2
    assert after[("pawpost_outbox_emails", (("kind", "digest"), ("state", "queued")))] == 1
    assert after[("pawpost_outbox_lag_seconds", ())] >= 600
    assert ("pawpost_queue_pending_tasks", ()) in after


def test_metrics_need_the_bearer_token_and_do_not_exist_without_one(
    scraper: FlaskClient, client: FlaskClient, world: World
) -> None:
    """The counts span every business: nobody but the scraper reads them."""
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404  # no token configured
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}):
        response = scraper.get("/metrics", headers=headers)
        assert response.status_code == 401 and "pawpost_" not in response.get_data(as_text=True)
    assert scraper.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
