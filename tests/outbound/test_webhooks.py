"""Webhook deliveries against a real local receiver: signed (checked with the independent
`standardwebhooks` verifier), retried with backoff until the receiver recovers, 410 disables,
and addresses that are not public are refused at send time."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from outbound.queue import configure_queue, huey
from outbound.tasks import run_webhook_delivery
from outbound.webhooks import Refused, allowed_address, resolve
from pawpost.settings import Settings
from tests.factories import make_business, make_family, make_staff, thread_of
from tests.outbound.conftest import make_settings
from tests.outbound.smtp_sink import RecordingHandler
from threads.models import OutboundEmail, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from threads.posting import NewAttachment, post_message
from threads.types import utcnow
from threads.sealing import SealBroken, seal, unseal
from threads.webhooks import EndpointProblems, RETRY_DELAYS, create_endpoint

KEY = "outbound-tests-secret-key-0123456789"  # make_settings's PAWPOST_SECRET_KEY


class Receiver:
    """A real HTTP server on an ephemeral port answering the statuses it is told, in order."""

    def __init__(self, statuses: list[int]):
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(f"answer {status}".encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dev_settings(database_url: str, tmp_path: Path) -> Iterator[Settings]:
    settings = make_settings(database_url, tmp_path, PAWPOST_DEV="1")
    configure_queue(settings)
    yield settings
    huey.storage.flush_all()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver([500, 503])
    yield running
    running.close()


def test_a_posted_message_is_signed_retried_until_the_receiver_recovers(dev_settings: Settings, db: Session, receiver: Receiver) -> None:
    business = make_business(db)
    staff = make_staff(db, business)
    family = make_family(db, business)
    endpoint, secret = create_endpoint(db, business.id, url=receiver.url, events=["message.created"], development=True, secret_key=KEY, now=utcnow())
    other, _ = create_endpoint(db, business.id, url=receiver.url, events=["email.bounced"], development=True, secret_key=KEY, now=utcnow())
    foreign, _ = create_endpoint(db, make_business(db).id, url=receiver.url, events=["message.created"], development=True, secret_key=KEY, now=utcnow())
    message = post_message(db, thread_of(db, family), staff, "Walk done", [NewAttachment("walk.jpg", "image/jpeg", b"\xff\xd8jpeg")])
    db.commit()
    deliveries = db.scalars(select(WebhookDelivery)).all()
    assert [(d.endpoint_id, d.state) for d in deliveries] == [(endpoint.id, "pending")]  # not `other`, not `foreign`
    delivery_id = deliveries[0].id
    assert other.id and foreign.id
    db.rollback()

    start = utcnow()
    assert run_webhook_delivery(delivery_id, now=start) == RETRY_DELAYS[0]
    assert run_webhook_delivery(delivery_id, now=start) is None  # not due yet: nothing sent
    assert run_webhook_delivery(delivery_id, now=start + RETRY_DELAYS[0]) == RETRY_DELAYS[1]
    assert run_webhook_delivery(delivery_id, now=start + RETRY_DELAYS[0] + RETRY_DELAYS[1]) is None
    assert len(receiver.requests) == 3

    delivery = db.get(WebhookDelivery, delivery_id)
    assert delivery is not None and delivery.state == "succeeded" and delivery.attempts == 3
    log = db.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.id)).all()
    assert [a.status_code for a in log] == [500, 503, 200] and log[0].excerpt == "answer 500"

    # Every attempt is signed the Standard Webhooks way, under the same id: an independent
    # verifier accepts each one, and refuses a changed body.
    verifier = Webhook(secret)
    ids = set()
    for headers, body in receiver.requests:
        event = verifier.verify(body, headers)
        ids.add(headers["webhook-id"])
        assert event["type"] == "message.created"
        data = event["data"]
        assert data["family_id"] == family.external_id and data["text"] == "Walk done" and data["message_id"] == message.id
        assert data["author"] == {"kind": "staff", "name": staff.name}
        assert data["attachments"][0]["url"].startswith("https://portal.test/attachments/")
    assert len(ids) == 1
    headers, body = receiver.requests[0]
    with pytest.raises(Exception):
        verifier.verify(body.replace(b"Walk done", b"Walk dona"), headers)


@pytest.fixture
def dev_mail_settings(database_url: str, tmp_path: Path, sink: tuple[RecordingHandler, int]) -> Iterator[Settings]:
    """Development (loopback receivers allowed) with email to the recording SMTP relay."""
    settings = make_settings(database_url, tmp_path, PAWPOST_DEV="1", PAWPOST_OUTBOUND_URL=f"smtp://127.0.0.1:{sink[1]}")
    configure_queue(settings)
    yield settings
    huey.storage.flush_all()


def _admin_emails(sink: tuple[RecordingHandler, int], count: int) -> dict[str, EmailMessage]:
    """The emails the relay received, by recipient."""
    received = sink[0].wait_for(count)
    return {r.rcpt_tos[0]: message_from_bytes(r.raw, policy=default) for r in received}  # type: ignore[misc]


def _text(email: EmailMessage) -> str:
    part = email.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def test_410_disables_the_endpoint_and_emails_the_admins(dev_mail_settings: Settings, db: Session, sink: tuple[RecordingHandler, int]) -> None:
    gone = Receiver([410])
    try:
        business = make_business(db)
        admins = [make_staff(db, business, role="admin"), make_staff(db, business, role="admin")]
        make_staff(db, business, role="admin", active=False)
        senior = make_staff(db, business, role="senior")
        endpoint, _ = create_endpoint(db, business.id, url=gone.url, events=["message.created"], development=True, secret_key=KEY, now=utcnow())
        post_message(db, thread_of(db, make_family(db, business)), senior, "Hello")
        db.commit()
        delivery_id = db.scalar(select(WebhookDelivery.id))
        db.rollback()
        assert delivery_id is not None
        assert run_webhook_delivery(delivery_id, now=utcnow()) is None
        refreshed = db.get(WebhookEndpoint, endpoint.id)
        assert refreshed is not None and not refreshed.active and "410" in (refreshed.disabled_reason or "")
        assert db.get(WebhookDelivery, delivery_id).state == "failed"  # type: ignore[union-attr]

        # Every active admin, and nobody else, gets an email through the outbox with the link
        # to the endpoint's page.
        emails = _admin_emails(sink, 2)
        assert set(emails) == {a.email for a in admins}
        text = _text(emails[admins[0].email])
        assert f"https://portal.test/settings/webhooks/{endpoint.id}" in text and "410 Gone" in text and gone.url in text
        assert "disabled" in str(emails[admins[0].email]["Subject"])
        rows = db.scalars(select(OutboundEmail).where(OutboundEmail.kind == "webhook_disabled")).all()
        assert sorted(r.recipient_email for r in rows) == sorted(a.email for a in admins) and {r.state for r in rows} == {"sent"}
    finally:
        gone.close()


def test_three_days_of_failures_disable_the_endpoint_and_email_the_admins(
    dev_mail_settings: Settings, db: Session, sink: tuple[RecordingHandler, int]
) -> None:
    down = Receiver([500] * 20)
    try:
        business = make_business(db)
        admin = make_staff(db, business, role="admin")
        endpoint, _ = create_endpoint(db, business.id, url=down.url, events=["message.created"], development=True, secret_key=KEY, now=utcnow())
        post_message(db, thread_of(db, make_family(db, business)), make_staff(db, business), "Hello")
        db.commit()
        delivery_id = db.scalar(select(WebhookDelivery.id))
        db.rollback()
        assert delivery_id is not None
        moment = utcnow()
        for delay in RETRY_DELAYS:
            assert run_webhook_delivery(delivery_id, now=moment) == delay
            moment += delay
        assert run_webhook_delivery(delivery_id, now=moment) is None  # ~27 h: the delivery gives up
        assert db.get(WebhookDelivery, delivery_id).state == "failed"  # type: ignore[union-attr]
        assert db.get(WebhookEndpoint, endpoint.id).active  # type: ignore[union-attr]
        assert sink[0].received == []  # a day of failures: no email yet
        db.rollback()
        post_message(db, thread_of(db, make_family(db, business)), make_staff(db, business), "Again")
        db.commit()
        second = db.scalar(select(WebhookDelivery.id).where(WebhookDelivery.id != delivery_id))
        db.rollback()
        assert second is not None
        # The fake clock moves past 3 days of failures; the receiver really answers 500 again.
        assert run_webhook_delivery(second, now=utcnow() + timedelta(days=3, minutes=1)) is None
        assert len(down.requests) == len(RETRY_DELAYS) + 2
        refreshed = db.get(WebhookEndpoint, endpoint.id)
        assert refreshed is not None and not refreshed.active and "3 days" in (refreshed.disabled_reason or "")
        text = _text(_admin_emails(sink, 1)[admin.email])
        assert f"https://portal.test/settings/webhooks/{endpoint.id}" in text and "failed for 3 days" in text
        # A disabled endpoint is not sent to again, and its admins are not emailed twice.
        db.rollback()
        post_message(db, thread_of(db, make_family(db, business)), make_staff(db, business), "Third")
        db.commit()
        assert db.scalars(select(WebhookDelivery).where(WebhookDelivery.id > second)).all() == []
        assert len(db.scalars(select(OutboundEmail).where(OutboundEmail.kind == "webhook_disabled")).all()) == 1
    finally:
        down.close()


def test_the_stored_secret_is_sealed_and_opens_only_with_the_deployments_key(db: Session) -> None:
    """A dump of the database alone does not let anyone sign as Pawpost."""
    business = make_business(db)
    endpoint, secret = create_endpoint(db, business.id, url="https://crm.example.test/in", events=["message.created"], development=False, secret_key=KEY, now=utcnow())
    db.commit()
    stored = db.execute(text("SELECT * FROM webhook_endpoints WHERE id = :id"), {"id": endpoint.id}).one()
    dumped = " ".join(str(value) for value in stored)
    key_part = secret.removeprefix("whsec_")
    assert key_part not in dumped and key_part.rstrip("=") not in dumped and "whsec_" not in dumped
    assert base64.b64decode(key_part).hex() not in dumped
    assert unseal(KEY, endpoint.sealed_secret) == secret
    with pytest.raises(SealBroken):
        unseal("another-deployment-key-0123456789", endpoint.sealed_secret)
    assert seal(KEY, secret) != endpoint.sealed_secret  # fresh randomness each time


def test_a_secret_sealed_under_another_key_is_logged_never_sent(dev_settings: Settings, db: Session, receiver: Receiver) -> None:
    business = make_business(db)
    endpoint = WebhookEndpoint(business_id=business.id, url=receiver.url, events="message.created", sealed_secret=seal("an-old-key-0123456789", "whsec_" + "A" * 43 + "="), active=True)
    db.add(endpoint)
    post_message(db, thread_of(db, make_family(db, business)), make_staff(db, business), "Hello")
    db.commit()
    delivery_id = db.scalar(select(WebhookDelivery.id))
    db.rollback()
    assert delivery_id is not None
    assert run_webhook_delivery(delivery_id, now=utcnow()) == RETRY_DELAYS[0]
    assert receiver.requests == []
    attempt = db.scalar(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id))
    assert attempt is not None and attempt.status_code is None and "PAWPOST_SECRET_KEY" in attempt.excerpt


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "fd00:ec2::254", "100.100.100.200"],
)
def test_addresses_that_are_not_public_are_refused(address: str) -> None:
    assert not allowed_address(address, development=False)


def test_public_addresses_pass_and_loopback_only_in_development() -> None:
    assert allowed_address("93.184.216.34", development=False)
    assert allowed_address("127.0.0.1", development=True)
    assert not allowed_address("10.0.0.1", development=True)


def test_urls_are_checked_when_sending() -> None:
    with pytest.raises(Refused, match="not a public address"):
        resolve("https://127.0.0.1/hook", development=False)
    with pytest.raises(Refused, match="not a public address"):
        resolve("https://localhost:8443/hook", development=False)
    with pytest.raises(Refused, match="https"):
        resolve("http://93.184.216.34/hook", development=True)  # http only to loopback, and only in development
    with pytest.raises(Refused, match="https"):
        resolve("ftp://example.test/x", development=True)
    assert resolve("http://127.0.0.1:9/hook", development=True)[3] == "127.0.0.1"


def test_a_refused_address_is_logged_and_never_contacted(database_url: str, tmp_path: Path, db: Session, receiver: Receiver) -> None:
    production = make_settings(database_url, tmp_path)  # not development: loopback is refused
    configure_queue(production)
    try:
        business = make_business(db)
        endpoint = WebhookEndpoint(business_id=business.id, url=receiver.url.replace("http:", "https:"), events="message.created", sealed_secret=seal(KEY, "whsec_" + "A" * 43 + "="), active=True)
        db.add(endpoint)
        post_message(db, thread_of(db, make_family(db, business)), make_staff(db, business), "Hello")
        db.commit()
        delivery_id = db.scalar(select(WebhookDelivery.id))
        db.rollback()
        assert delivery_id is not None
        assert run_webhook_delivery(delivery_id, now=utcnow()) == RETRY_DELAYS[0]
        assert receiver.requests == []
        attempt = db.scalar(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id))
        assert attempt is not None and attempt.status_code is None and "not a public address" in attempt.excerpt
    finally:
        huey.storage.flush_all()


def test_endpoint_urls_are_validated_when_saved(db: Session) -> None:
    business = make_business(db)
    with pytest.raises(EndpointProblems) as refused:
        create_endpoint(db, business.id, url="http://example.test/h", events=["message.created"], development=False, secret_key=KEY, now=utcnow())
    assert "url" in refused.value.problems
    with pytest.raises(EndpointProblems) as refused:
        create_endpoint(db, business.id, url="https://example.test/h", events=["nope"], development=False, secret_key=KEY, now=utcnow())
    assert "events" in refused.value.problems
    made, secret = create_endpoint(db, business.id, url="https://example.test/h", events=["webhook.test", "message.created"], development=False, secret_key=KEY, now=utcnow())
    assert made.events == "message.created webhook.test" and secret.startswith("whsec_")
    assert json.dumps(made.event_list)


def test_a_bouncing_address_becomes_an_email_bounced_event(db: Session) -> None:
    from threads.bounces import mark_bouncing

    business = make_business(db)
    family = make_family(db, business)
    contact = family.contacts[0]
    endpoint, _ = create_endpoint(db, business.id, url="https://crm.example.test/in", events=["email.bounced"], development=False, secret_key=KEY, now=utcnow())
    assert mark_bouncing(db, contact.id, contact.addresses[0].email.upper(), "550 5.1.1 no such user", utcnow()) == 1
    [delivery] = db.scalars(select(WebhookDelivery)).all()
    event = json.loads(delivery.payload)
    assert delivery.endpoint_id == endpoint.id and event["type"] == "email.bounced"
    assert event["data"] == {
        "family_id": family.external_id, "contact_id": contact.external_id, "contact_name": contact.name,
        "email": contact.addresses[0].email, "reason": "550 5.1.1 no such user",
    }
    assert mark_bouncing(db, contact.id, "nobody@else.test", "x", utcnow()) == 0
    assert len(db.scalars(select(WebhookDelivery)).all()) == 1
