"""The REST API as an integrator meets it: keys, scopes, two businesses, the bulk upsert,
problem answers, rate limits and the OpenAPI document, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from pawpost.cli import main
from portal import api_conversations
from portal.api import OPERATIONS
from tests.portal.conftest import SECRET, World, csrf_token, sign_in_as
from threads.api_keys import create_api_key, revoke_api_key
from threads.models import ApiKey, AuditEntry, Business, Family, RateLimitHit
from threads.types import utcnow

ALL_SCOPES = ("directory:read", "directory:write", "messages:read", "messages:write", "webhooks:manage")


def key_for(db: Session, business_id: int, *scopes: str) -> str:
    _key, secret = create_api_key(db, business_id, name="sync", scopes=scopes or ALL_SCOPES, now=utcnow())
    db.commit()
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def writing(secret: str) -> dict[str, str]:
    """A write's headers: the key and a new Idempotency-Key (every write needs one)."""
    return {**bearer(secret), "Idempotency-Key": str(uuid.uuid4())}


def assert_problem(response, status: int, kind: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["type"] == f"/api/v1/problems/{kind}" and body["status"] == status
    return body


def test_a_key_sees_only_its_own_business(client: FlaskClient, world: World, db: Session) -> None:
    mine = key_for(db, world.business.id, "directory:read")
    theirs = key_for(db, world.foreign_family.business_id, "directory:read")

    families = client.get("/api/v1/families", headers=bearer(mine)).get_json()["data"]
    assert sorted(f["name"] for f in families) == ["Garcia family", "Johnson family"]
    johnson = next(f for f in families if f["name"] == "Johnson family")
    assert [c["name"] for c in johnson["contacts"]] == ["Emma Johnson", "Liam Johnson"]
    assert johnson["contacts"][0]["primary"] and johnson["contacts"][0]["addresses"][0]["email"]
    assert [p["name"] for p in johnson["pets"]] == ["Bella"]
    staff = client.get("/api/v1/staff", headers=bearer(mine)).get_json()["data"]
    assert {s["name"] for s in staff} == {"Sam Senior", "Sky Senior", "Ada Admin", "Bo Basic"}

    # The other business's family is "not found" to this key, exactly like an id nobody has.
    foreign_id = world.foreign_family.external_id
    assert_problem(client.get(f"/api/v1/families/{foreign_id}", headers=bearer(mine)), 404, "not-found")
    assert_problem(client.get("/api/v1/families/nobody", headers=bearer(mine)), 404, "not-found")
    assert client.get(f"/api/v1/families/{foreign_id}", headers=bearer(theirs)).get_json()["name"] == "Bellamy family"
    theirs_listed = client.get("/api/v1/families", headers=bearer(theirs)).get_json()["data"]
    assert [f["name"] for f in theirs_listed] == ["Bellamy family"]


def test_unknown_revoked_and_underscoped_keys_are_refused(client: FlaskClient, world: World, db: Session) -> None:
    reader = key_for(db, world.business.id, "messages:read")
    assert_problem(client.get("/api/v1/families"), 401, "unauthorized")
    assert_problem(client.get("/api/v1/families", headers=bearer("pp_" + "x" * 43)), 401, "unauthorized")
    assert client.get("/api/v1/families", headers=bearer("pp_" + "x" * 43)).headers["WWW-Authenticate"].startswith("Bearer")
    body = assert_problem(client.get("/api/v1/families", headers=bearer(reader)), 403, "insufficient-scope")
    assert "directory:read" in body["detail"]

    full = key_for(db, world.business.id, "directory:read")
    assert client.get("/api/v1/families", headers=bearer(full)).status_code == 200
    key_id = db.scalar(select(ApiKey.id).where(ApiKey.prefix == full[:11]))
    assert key_id is not None
    revoke_api_key(db, world.business.id, key_id, utcnow())
    db.commit()
    assert_problem(client.get("/api/v1/families", headers=bearer(full)), 401, "unauthorized")


def test_last_use_is_recorded(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:read")
    assert db.scalar(select(ApiKey.last_used_at).where(ApiKey.prefix == secret[:11])) is None
    db.rollback()
    client.get("/api/v1/staff", headers=bearer(secret))
    assert db.scalar(select(ApiKey.last_used_at).where(ApiKey.prefix == secret[:11])) is not None
    assert db.scalar(select(ApiKey.key_hash).where(ApiKey.prefix == secret[:11])) != secret


def test_lists_page_with_cursors(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:read")
    seen, cursor = [], None
    for _ in range(5):
        query = f"?limit=1&cursor={cursor}" if cursor else "?limit=1"
        page = client.get("/api/v1/staff" + query, headers=bearer(secret)).get_json()
        seen += [s["name"] for s in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["Ada Admin", "Bo Basic", "Sam Senior", "Sky Senior"]
    body = assert_problem(client.get("/api/v1/staff?limit=0", headers=bearer(secret)), 422, "invalid-request")
    assert body["errors"][0]["pointer"] == "limit"
    assert_problem(client.get("/api/v1/staff?cursor=abc", headers=bearer(secret)), 422, "invalid-request")


def _document(slug: str, *families: dict) -> dict:
    return {"business": {"id": slug, "name": "Happy Tails", "timezone": "America/New_York", "sender_name": "Happy Tails"}, "families": list(families)}


def _family(ident: str, email: str) -> dict:
    return {"id": ident, "name": f"{ident} family", "contacts": [{"id": "c1", "name": "Ann", "email": email, "primary": True}], "pets": [{"name": "Rex"}]}


def test_bulk_upsert_is_all_or_nothing(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:write", "directory:read")
    before = db.scalar(select(func.count()).select_from(Family))
    db.rollback()
    broken = _document(world.business.slug, _family("new-1", "ann@new.test"), _family("new-2", "not an address"))
    body = assert_problem(client.post("/api/v1/directory", json=broken, headers=writing(secret)), 422, "invalid-directory")
    assert [e["path"] for e in body["errors"]] == ["$.families[1].contacts[0].email"]
    assert db.scalar(select(func.count()).select_from(Family)) == before  # the valid family was not written either
    db.rollback()

    fixed = _document(world.business.slug, _family("new-1", "ann@new.test"), _family("new-2", "bob@new.test"))
    done = client.post("/api/v1/directory", json=fixed, headers=writing(secret))
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["created"]["families"] == 2
    assert client.get("/api/v1/families/new-2", headers=bearer(secret)).get_json()["contacts"][0]["addresses"][0]["email"] == "bob@new.test"

    # A key writes to its own business only, whatever the document says.
    foreign_slug = db.scalar(select(Business.slug).where(Business.id == world.foreign_family.business_id))
    db.rollback()
    other = assert_problem(client.post("/api/v1/directory", json=_document(foreign_slug, _family("x", "x@x.test")), headers=writing(secret)), 422, "invalid-directory")
    assert other["errors"][0]["pointer"] == "/business/id"
    assert_problem(client.post("/api/v1/directory", json={"business": 3, "extra": 1}, headers=writing(secret)), 422, "invalid-request")
    assert_problem(client.post("/api/v1/directory", data="{", headers={**writing(secret), "Content-Type": "application/json"}), 400, "malformed-json")
    reader = key_for(db, world.business.id, "directory:read")
    assert_problem(client.post("/api/v1/directory", json=fixed, headers=writing(reader)), 403, "insufficient-scope")


def test_each_key_is_rate_limited(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    app.config["PAWPOST_API_REQUESTS_PER_MINUTE"] = 2
    first, second = key_for(db, world.business.id, "directory:read"), key_for(db, world.business.id, "directory:read")
    assert [client.get("/api/v1/staff", headers=bearer(first)).status_code for _ in range(2)] == [200, 200]
    limited = client.get("/api/v1/staff", headers=bearer(first))
    assert_problem(limited, 429, "rate-limited")
    assert int(limited.headers["Retry-After"]) > 0
    assert client.get("/api/v1/staff", headers=bearer(second)).status_code == 200  # per key, not per business


def test_the_document_describes_every_route_from_the_validating_models(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    routed = {
        (method, rule.rule.replace("<", "{").replace(">", "}"))
        for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi_json"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    assert routed == described and len(described) == len(OPERATIONS)
    families = document["paths"]["/api/v1/families"]["get"]
    assert {p["name"] for p in families["parameters"]} == {"cursor", "limit", "updated_since"}
    for path, operations in document["paths"].items():
        for method, entry in operations.items():
            header = [p for p in entry["parameters"] if p["in"] == "header" and p["name"] == "Idempotency-Key"]
            if method == "get":
                assert header == [], path
            else:
                assert header[0]["required"] is True and "400" in entry["responses"], (method, path)
    page_schema = document["components"]["schemas"]["FamilyPage"]
    assert set(page_schema["properties"]) == {"data", "next_cursor"}
    assert "/api/v1/problems" not in json.dumps(document["paths"]["/api/v1/staff"]["get"]["responses"]["200"])
    assert_problem(client.get("/api/v1/nowhere"), 404, "not-found")


def test_admins_create_and_revoke_keys_in_the_portal(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    db.rollback()
    sign_in_as(app, client, world.admin)
    refused = client.post("/settings/api-keys", data={"csrf_token": csrf_token(client), "name": "", "scopes": ["nope"]})
    assert refused.status_code == 400 and "give the key a name" in refused.get_data(as_text=True)
    made = client.post("/settings/api-keys", data={"csrf_token": csrf_token(client), "name": "Booking sync", "scopes": ["directory:read"]})
    assert made.status_code == 201
    page = made.get_data(as_text=True)
    found = re.search(r'<code id="new-key" class="secret">(pp_[^<]+)</code>', page)
    assert found
    secret = found.group(1)
    assert client.get("/api/v1/staff", headers=bearer(secret)).status_code == 200
    listing = client.get("/settings/api-keys").get_data(as_text=True)
    assert secret[:11] in listing and secret not in listing and "Booking sync" in listing
    key_id = db.scalar(select(ApiKey.id).where(ApiKey.prefix == secret[:11]))
    db.rollback()
    assert client.post(f"/settings/api-keys/{key_id}/revoke", data={"csrf_token": csrf_token(client)}).status_code == 302
    assert client.get("/api/v1/staff", headers=bearer(secret)).status_code == 401
    # Another business's admin cannot revoke it (404, like an id that does not exist).
    sign_in_as(app, client, world.foreign_admin)
    assert client.post(f"/settings/api-keys/{key_id}/revoke", data={"csrf_token": csrf_token(client)}).status_code == 404


def test_apikeys_command(database_url: str, tmp_path: Path, world: World, app: Flask, client: FlaskClient) -> None:
    env = {"PAWPOST_DATABASE_URL": database_url, "PAWPOST_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    made = runner.invoke(main, ["apikeys", "create", "--business", world.business.slug, "--name", "Sync", "--scope", "directory:read", "--scope", "messages:read", "--json"], env=env, catch_exceptions=False)
    assert made.exit_code == 0, made.output
    data = json.loads(made.stdout)
    assert set(data) == {"id", "name", "key", "scopes"} and data["scopes"] == ["directory:read", "messages:read"]
    assert client.get("/api/v1/staff", headers=bearer(data["key"])).status_code == 200
    listed = runner.invoke(main, ["apikeys", "list", "--json"], env=env, catch_exceptions=False)
    rows = [r for r in json.loads(listed.stdout) if r["id"] == data["id"]]
    assert [r["prefix"] for r in rows] == [data["key"][:11]] and rows[0]["last_used_at"] and data["key"] not in listed.stdout
    assert runner.invoke(main, ["apikeys", "revoke", str(data["id"])], env=env).exit_code == 0
    assert client.get("/api/v1/staff", headers=bearer(data["key"])).status_code == 401
    assert runner.invoke(main, ["apikeys", "revoke", "999999"], env=env).exit_code != 0
    bad = runner.invoke(main, ["apikeys", "create", "--business", world.business.slug, "--name", "x", "--scope", "everything"], env=env)
    assert bad.exit_code != 0


def test_a_retried_write_acts_once_and_replays_its_answer(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:write")
    document = _document(world.business.slug, _family("idem-1", "ann@idem.test"))
    headers = {**bearer(secret), "Idempotency-Key": "sync-2026-12-02-001"}
    first = client.post("/api/v1/directory", json=document, headers=headers)
    again = client.post("/api/v1/directory", json=document, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.get_json()["created"]["families"] == 1
    assert again.get_data() == first.get_data() and again.headers["Idempotent-Replayed"] == "true"
    other = dict(document, families=[_family("idem-2", "bo@idem.test")])
    assert_problem(client.post("/api/v1/directory", json=other, headers=headers), 422, "idempotency-key-reused")
    # A new key is a new request: the same document is upserted again (an update this time).
    fresh = client.post("/api/v1/directory", json=document, headers=writing(secret))
    assert "families" not in fresh.get_json()["created"] and fresh.get_json()["updated"]["families"] == 1
    # A refused request is an answer too: its retry gets the same problem back.
    broken_headers = {**bearer(secret), "Idempotency-Key": "broken"}
    broken = _document(world.business.slug, _family("idem-3", "nope"))
    assert_problem(client.post("/api/v1/directory", json=broken, headers=broken_headers), 422, "invalid-directory")
    replay = client.post("/api/v1/directory", json=broken, headers=broken_headers)
    assert_problem(replay, 422, "invalid-directory")
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_concurrent_retries_act_once(app: Flask, world: World, db: Session) -> None:
    import threading

    secret = key_for(db, world.business.id, "directory:write")
    families = [_family(f"race-{n}", f"p{n}@race.test") for n in range(30)]
    document = _document(world.business.slug, *families)
    headers = {**bearer(secret), "Idempotency-Key": "race"}
    answers: list[tuple[int, bytes, str | None]] = []
    start = threading.Barrier(4)

    def retry() -> None:
        client = app.test_client()
        start.wait()
        response = client.post("/api/v1/directory", json=document, headers=headers)
        answers.append((response.status_code, response.get_data(), response.headers.get("Idempotent-Replayed")))

    workers = [threading.Thread(target=retry) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    acted = [a for a in answers if a[0] == 200 and a[2] is None]
    assert len(acted) == 1, answers
    assert json.loads(acted[0][1])["created"]["families"] == 30
    for status, body, replayed in answers:
        assert (status, replayed) in ((200, None), (200, "true"), (409, None))
        if status == 200:
            assert body == acted[0][1]
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Family).where(Family.external_id.like("race-%"))) == 30


def test_admins_register_webhook_endpoints_and_see_their_deliveries(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    from threads.models import WebhookDelivery, WebhookEndpoint

    db.rollback()
    sign_in_as(app, client, world.admin)
    refused = client.post("/settings/webhooks", data={"csrf_token": csrf_token(client), "url": "http://hooks.example.test/x", "events": ["message.created"]})
    assert refused.status_code == 400 and "https://" in refused.get_data(as_text=True)
    made = client.post("/settings/webhooks", data={"csrf_token": csrf_token(client), "url": "https://crm.example.test/hooks", "events": ["message.created"]})
    assert made.status_code == 201
    secret = re.search(r'<code id="webhook-secret" class="secret">(whsec_[^<]+)</code>', made.get_data(as_text=True))
    assert secret
    endpoint_id = db.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.url == "https://crm.example.test/hooks"))
    db.rollback()
    page = client.get(f"/settings/webhooks/{endpoint_id}").get_data(as_text=True)
    assert secret.group(1) not in page and "Nothing sent yet" in page
    assert client.post(f"/settings/webhooks/{endpoint_id}/test", data={"csrf_token": csrf_token(client)}).status_code == 302
    delivery = db.scalar(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
    assert delivery is not None and delivery.event_type == "webhook.test" and delivery.state == "pending"
    db.rollback()
    assert "webhook.test" in client.get(f"/settings/webhooks/{endpoint_id}").get_data(as_text=True)
    sign_in_as(app, client, world.foreign_admin)
    assert client.get(f"/settings/webhooks/{endpoint_id}").status_code == 404


def test_keys_with_webhooks_manage_register_endpoints(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "webhooks:manage")
    made = client.post("/api/v1/webhook-endpoints", json={"url": "https://crm.example.test/in", "events": ["message.created"]}, headers=writing(secret))
    assert made.status_code == 201, made.get_data(as_text=True)
    endpoint = made.get_json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["events"] == ["message.created"]
    listed = client.get("/api/v1/webhook-endpoints", headers=bearer(secret)).get_json()["data"]
    assert endpoint["id"] in [e["id"] for e in listed] and all("secret" not in e for e in listed)
    tested = client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/test", headers=writing(secret))
    assert tested.status_code == 202 and len(tested.get_json()["delivery_ids"]) == 1
    refused = client.post("/api/v1/webhook-endpoints", json={"url": "ftp://x.test", "events": ["nope"]}, headers=writing(secret))
    assert {e["pointer"] for e in assert_problem(refused, 422, "invalid-request")["errors"]} == {"/url", "/events"}
    foreign = key_for(db, world.foreign_family.business_id, "webhooks:manage")
    assert_problem(client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(foreign)), 404, "not-found")
    assert_problem(client.delete(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=writing(foreign)), 404, "not-found")
    assert client.delete(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=writing(secret)).status_code == 204
    assert_problem(client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(secret)), 404, "not-found")
    reader = key_for(db, world.business.id, "directory:read")
    assert_problem(client.get("/api/v1/webhook-endpoints", headers=bearer(reader)), 403, "insufficient-scope")


def test_an_appointment_changed_in_the_portal_becomes_an_event(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    from threads.models import WebhookDelivery
    from threads.webhooks import create_endpoint

    endpoint, _secret = create_endpoint(
        db, world.business.id, url="https://crm.example.test/in", events=["appointment.changed"], development=False, secret_key=SECRET, now=utcnow()
    )
    db.commit()
    sign_in_as(app, client, world.admin)
    assert client.post(f"/schedule/appointments/{world.appointment_id}/cancel", data={"csrf_token": csrf_token(client)}).status_code == 302
    [delivery] = db.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)).all()
    event = json.loads(delivery.payload)
    assert event["type"] == "appointment.changed"
    data = event["data"]
    assert (data["change"], data["status"], data["pawpost_id"], data["family_id"]) == ("cancel", "cancelled", world.appointment_id, world.scheduled.external_id)
    assert data["staff"][0]["name"] == "Bo Basic" and data["source"] == "portal"


def test_appointments_are_listed_and_read_by_the_business_id(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:read")
    document = _document(world.business.slug, _family("appt-fam", "ann@appt.test"))
    document["staff"] = [{"id": "walker-1", "name": "Wes Walker", "email": "wes@a.test", "role": "basic"}]
    document["appointments"] = [{"id": "visit-9", "family": "appt-fam", "staff": ["walker-1"], "start": "2026-12-03T09:00:00-05:00", "end": "2026-12-03T10:00:00-05:00"}]
    writer = key_for(db, world.business.id, "directory:write")
    assert client.post("/api/v1/directory", json=document, headers=writing(writer)).status_code == 200
    listed = client.get("/api/v1/appointments", headers=bearer(secret)).get_json()["data"]
    assert {a["family_id"] for a in listed} >= {world.scheduled.external_id, "appt-fam"}
    assert world.foreign_appointment_id not in {a["pawpost_id"] for a in listed}
    visit = client.get("/api/v1/appointments/visit-9", headers=bearer(secret)).get_json()
    assert visit["staff"] == [{"id": "walker-1", "name": "Wes Walker"}] and visit["starts_at"].startswith("2026-12-03T14:00:00")
    assert_problem(client.get("/api/v1/appointments/nope", headers=bearer(secret)), 404, "not-found")


def test_put_creates_or_updates_a_family_by_its_id_with_the_import_rules(client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "directory:write")
    entry = {"name": "Nguyen family", "contacts": [{"id": "c1", "name": "Linh Nguyen", "email": "linh@ng.test"}], "pets": [{"name": "Mochi", "species": "cat"}]}
    made = client.put("/api/v1/families/ng-7", json=entry, headers=writing(secret))
    assert made.status_code == 200, made.get_data(as_text=True)
    assert made.get_json()["contacts"][0]["addresses"][0]["email"] == "linh@ng.test"
    entry["name"] = "Nguyen-Tran family"
    entry["contacts"].append({"id": "c2", "name": "Bao Tran", "email": "bao@ng.test"})
    again = client.put("/api/v1/families/ng-7", json=entry, headers=writing(secret)).get_json()
    assert again["name"] == "Nguyen-Tran family" and [c["name"] for c in again["contacts"]] == ["Linh Nguyen", "Bao Tran"]
    broken = {"name": "", "contacts": [{"name": "X", "email": "not-an-address"}]}
    body = assert_problem(client.put("/api/v1/families/ng-8", json=broken, headers=writing(secret)), 422, "invalid-family")
    assert {e["path"] for e in body["errors"]} >= {"$.contacts[0].email"}
    assert db.scalar(select(func.count()).select_from(Family).where(Family.external_id == "ng-8")) == 0
    kept = db.execute(select(AuditEntry.actor_name, AuditEntry.summary).where(AuditEntry.business_id == world.business.id).order_by(AuditEntry.id)).all()
    assert [(name.split(" (")[0], summary) for name, summary in kept] == [
        ("API key sync", "Added Nguyen family through the API"),
        ("API key sync", "Replaced Nguyen-Tran family through the API"),
    ]


def _hits(db: Session, secret: str) -> int:
    key_id = db.scalar(select(ApiKey.id).where(ApiKey.prefix == secret[:11]))
    count = db.scalar(select(func.count()).select_from(RateLimitHit).where(RateLimitHit.bucket == f"api-key:{key_id}"))
    db.rollback()
    return count or 0


def test_a_read_is_one_transaction_with_its_keys_bookkeeping(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    secret = key_for(db, world.business.id, "messages:read")
    begun: list[str] = []
    event.listen(app.extensions["pawpost"].engine, "begin", lambda conn: begun.append("begin"))
    event.listen(app.extensions["pawpost"].engine, "commit", lambda conn: begun.append("commit"))
    assert client.get(f"/api/v1/threads/{world.thread.id}/messages", headers=bearer(secret)).status_code == 200
    assert begun == ["begin", "commit"]
    assert _hits(db, secret) == 1


def test_refused_and_failed_reads_still_count_against_the_key(
    app: Flask, client: FlaskClient, world: World, db: Session, monkeypatch
) -> None:
    secret = key_for(db, world.business.id, "messages:read")
    assert_problem(client.get("/api/v1/threads/999999/messages", headers=bearer(secret)), 404, "not-found")
    assert_problem(client.get("/api/v1/staff", headers=bearer(secret)), 403, "insufficient-scope")
    assert_problem(client.get("/api/v1/threads?limit=0", headers=bearer(secret)), 422, "invalid-request")
    assert _hits(db, secret) == 3

    def broken() -> None:
        raise RuntimeError("the view failed")

    monkeypatch.setattr(api_conversations, "_activity", broken)
    assert client.get("/api/v1/threads", headers=bearer(secret)).status_code == 500
    assert _hits(db, secret) == 4
    app.config["PAWPOST_API_REQUESTS_PER_MINUTE"] = 4
    assert_problem(client.get(f"/api/v1/threads/{world.thread.id}/messages", headers=bearer(secret)), 429, "rate-limited")
