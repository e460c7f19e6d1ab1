"""Every route's access matrix: signed out, basic, senior, admin and another business's senior.

Basic staff are scheduled today with the Johnson family only. Another business's ids
answer 404 (like ids that do not exist); a family of one's own business that basic staff
may not see answers 403.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from outbound.links import attachment_token
from tests.portal.conftest import SECRET, World, csrf_token, sign_in_as

ROLES = ("signed_out", "basic", "senior", "admin", "foreign", "foreign_admin")
# Admin pages answer 403 to every other role; another business's ids answer 404 to an admin.
ADMIN_ONLY = {"signed_out": 302, "basic": 403, "senior": 403, "foreign": 403}

# (method, path template, {role: status}); "*" is the status for every role not listed, and
# "foreign_admin" (another business's admin) falls back to what "foreign" gets.
MATRIX: list[tuple[str, str, dict[str, int]]] = [
    ("GET", "/messages", {"signed_out": 302, "basic": 403, "*": 200}),
    ("GET", "/messages/rows", {"signed_out": 401, "basic": 403, "*": 200}),
    ("GET", "/api/unread?ids={thread}", {"signed_out": 401, "basic": 403, "*": 200}),
    ("GET", "/api/search?q=bella", {"signed_out": 401, "basic": 403, "*": 200}),
    ("GET", "/today", {"signed_out": 302, "*": 200}),
    ("GET", "/threads/{thread}", {"signed_out": 302, "foreign": 404, "*": 200}),
    ("GET", "/threads/{other_thread}", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 200}),
    ("GET", "/threads/{thread}/messages?after=0", {"signed_out": 401, "foreign": 404, "*": 200}),
    ("GET", "/threads/{other_thread}/messages?after=0", {"signed_out": 401, "basic": 403, "foreign": 404, "*": 200}),
    ("GET", "/families/{scheduled}", {"signed_out": 302, "foreign": 404, "*": 200}),
    ("GET", "/families/{other}", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 200}),
    ("GET", "/families/{scheduled}/thread", {"signed_out": 302, "foreign": 404, "*": 302}),
    ("GET", "/families/{other}/thread", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 302}),
    ("GET", "/attachments/{image}", {"signed_out": 302, "foreign": 404, "*": 200}),
    ("GET", "/attachments/{other_image}", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 200}),
    # The signed link in a parent's digest needs no sign-in; a wrong token finds nothing.
    ("GET", "/attachments/{image_link}", {"*": 200}),
    ("GET", "/attachments/{image}/{bad_token}", {"*": 404}),
    ("GET", "/quarantine", {"signed_out": 302, "basic": 403, "*": 200}),
    ("GET", "/dev/mailbox", {"signed_out": 302, "basic": 403, "*": 200}),
    ("GET", "/dev/mailbox/1700000000.M1P1.host", {"signed_out": 302, "basic": 403, "*": 404}),
    ("GET", "/healthz", {"*": 200}),
    ("GET", "/search?q=bella", {"signed_out": 302, "*": 200}),
    ("GET", "/search", {"signed_out": 302, "*": 200}),
    ("GET", "/saved-replies", {"signed_out": 302, "basic": 403, "*": 200}),
    ("GET", "/announcements", {"signed_out": 302, "basic": 403, "*": 200}),
    ("POST", "/announcements/preview", {"signed_out": 302, "basic": 403, "*": 200}),  # the matrix's text, to everyone
    ("POST", "/announcements", {"signed_out": 302, "basic": 403, "*": 302}),
    ("GET", "/announcements/999999", {"signed_out": 302, "basic": 403, "*": 404}),
    ("POST", "/saved-replies", {"signed_out": 302, "basic": 403, "*": 400}),  # no name or text in the matrix's form
    ("POST", "/saved-replies/999999", {"signed_out": 302, "basic": 403, "*": 404}),
    ("POST", "/saved-replies/999999/delete", {"signed_out": 302, "basic": 403, "*": 404}),
    ("GET", "/families/{scheduled}/saved-replies", {"signed_out": 401, "foreign": 404, "*": 200}),
    ("GET", "/families/{other}/saved-replies", {"signed_out": 401, "basic": 403, "foreign": 404, "*": 200}),
    ("POST", "/threads/{thread}/unread", {"signed_out": 302, "foreign": 404, "*": 302}),
    ("POST", "/threads/{other_thread}/unread", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 302}),
    ("POST", "/threads/{thread}/messages", {"signed_out": 401, "foreign": 404, "*": 302}),
    ("POST", "/threads/{other_thread}/messages", {"signed_out": 401, "basic": 403, "foreign": 404, "*": 302}),
    ("POST", "/families/{other}/messages", {"signed_out": 401, "basic": 403, "foreign": 404, "*": 302}),
    ("POST", "/quarantine/{held}/release", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 302}),
    ("POST", "/quarantine/{held2}/discard", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 302}),
    ("POST", "/dev/mailbox/1700000000.M1P1.host/reply", {"signed_out": 302, "basic": 403, "*": 404}),
    ("GET", "/staff", {**ADMIN_ONLY, "foreign_admin": 200, "*": 200}),
    ("GET", "/staff/{senior2}", {**ADMIN_ONLY, "foreign_admin": 404, "*": 200}),
    ("GET", "/staff/{foreign_senior}", {**ADMIN_ONLY, "admin": 404, "foreign_admin": 200}),
    ("POST", "/staff/{senior2}/sessions/{senior2_session}/end", {**ADMIN_ONLY, "foreign_admin": 404, "*": 302}),
    ("POST", "/staff/{foreign_senior}/sessions/{senior2_session}/end", {**ADMIN_ONLY, "foreign_admin": 404, "*": 404}),
    ("POST", "/staff/{senior2}/sessions/end", {**ADMIN_ONLY, "foreign_admin": 404, "*": 302}),
    ("POST", "/staff/{foreign_senior}/sessions/end", {**ADMIN_ONLY, "admin": 404, "foreign_admin": 302}),
    # The matrix's form has no name or email: admins get the form back with its errors.
    ("POST", "/staff/invite", {**ADMIN_ONLY, "foreign_admin": 400, "*": 400}),
    ("POST", "/staff/{senior2}/role", {**ADMIN_ONLY, "foreign_admin": 404, "*": 302}),
    ("POST", "/staff/{senior2}/resend", {**ADMIN_ONLY, "foreign_admin": 404, "*": 302}),
    ("POST", "/staff/{senior2}/deactivate", {**ADMIN_ONLY, "foreign_admin": 404, "*": 302}),
    ("POST", "/staff/{senior2}/activate", {**ADMIN_ONLY, "foreign_admin": 404, "*": 302}),
    ("POST", "/staff/{foreign_senior}/deactivate", {**ADMIN_ONLY, "admin": 404, "foreign_admin": 302}),
    ("POST", "/staff/{foreign_senior}/activate", {**ADMIN_ONLY, "admin": 404, "foreign_admin": 302}),
    ("GET", "/forgot", {"*": 200}),
    ("POST", "/forgot", {"*": 400}),  # no email in the matrix's form
    ("GET", "/invite/not-a-real-token", {"*": 404}),
    ("POST", "/invite/not-a-real-token", {"*": 404}),
    ("GET", "/reset/not-a-real-token", {"*": 404}),
    ("POST", "/reset/not-a-real-token", {"*": 404}),
    ("GET", "/account/two-factor", {"signed_out": 302, "*": 200}),
    ("POST", "/account/two-factor/enable", {"*": 302}),  # nothing set up yet: back to the page
    ("POST", "/account/two-factor/recovery-codes", {"*": 302}),
    ("POST", "/account/two-factor/disable", {"*": 302}),
    ("GET", "/signin/code", {"*": 302}),  # no password given just before
    ("POST", "/signin/code", {"*": 302}),
    ("GET", "/settings/security", {**ADMIN_ONLY, "foreign_admin": 200, "*": 200}),
    ("POST", "/settings/security", {**ADMIN_ONLY, "foreign_admin": 302, "*": 302}),
    ("GET", "/families", {"signed_out": 302, "basic": 403, "*": 200}),
    ("POST", "/families", {"signed_out": 302, "basic": 403, "*": 400}),  # no family name in the matrix's form
    ("GET", "/families/{scheduled}/edit", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 200}),
    ("POST", "/families/{scheduled}/name", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 400}),
    ("POST", "/families/{scheduled}/contacts", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 400}),
    ("POST", "/families/{scheduled}/contacts/{contact}", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 400}),
    ("POST", "/families/{scheduled}/contacts/{contact}/addresses", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 400}),
    ("POST", "/families/{scheduled}/addresses/{address}/clear-bounce", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 302}),
    ("POST", "/families/{scheduled}/addresses/{address}/move", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 400}),
    ("POST", "/families/{scheduled}/addresses/{address}/remove", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 400}),
    ("POST", "/families/{scheduled}/addresses/{foreign_address}/clear-bounce", {"signed_out": 302, "basic": 403, "*": 404}),
    ("POST", "/families/{scheduled}/pets", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 400}),
    ("POST", "/families/{scheduled}/pets/{pet}", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 400}),
    ("POST", "/families/{scheduled}/pets/{foreign_pet}/remove", {"signed_out": 302, "basic": 403, "*": 404}),
    ("POST", "/families/{other}/deactivate", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 302}),
    ("POST", "/families/{other}/activate", {"signed_out": 302, "basic": 403, "foreign": 404, "*": 302}),
    ("GET", "/schedule", {"signed_out": 302, "basic": 403, "*": 200}),
    ("GET", "/schedule?view=day&by=family", {"signed_out": 302, "basic": 403, "*": 200}),
    ("GET", "/schedule/appointments/new", {**ADMIN_ONLY, "foreign_admin": 200, "*": 200}),
    ("POST", "/schedule/appointments", {**ADMIN_ONLY, "foreign_admin": 400, "*": 400}),  # the matrix's form has no times
    ("GET", "/schedule/appointments/{appointment}", {**ADMIN_ONLY, "foreign_admin": 404, "*": 200}),
    ("GET", "/schedule/appointments/{foreign_appointment}", {**ADMIN_ONLY, "admin": 404, "foreign_admin": 200}),
    ("POST", "/schedule/appointments/{appointment}", {**ADMIN_ONLY, "foreign_admin": 404, "*": 400}),
    ("POST", "/schedule/appointments/{appointment}/cancel", {**ADMIN_ONLY, "foreign_admin": 404, "*": 302}),
    ("POST", "/schedule/appointments/{foreign_appointment}/cancel", {**ADMIN_ONLY, "admin": 404, "foreign_admin": 302}),
    ("GET", "/import", {**ADMIN_ONLY, "foreign_admin": 200, "*": 200}),
    ("GET", "/import/families.csv", {**ADMIN_ONLY, "foreign_admin": 200, "*": 200}),
    ("GET", "/import/appointments.csv", {**ADMIN_ONLY, "foreign_admin": 200, "*": 200}),
    ("POST", "/import", {**ADMIN_ONLY, "foreign_admin": 400, "*": 400}),  # no file in the matrix's form
    ("GET", "/settings", {**ADMIN_ONLY, "foreign_admin": 200, "*": 200}),
    ("POST", "/settings", {**ADMIN_ONLY, "foreign_admin": 400, "*": 400}),  # no name in the matrix's form
    ("GET", "/threads/{thread}/reply-address", {**ADMIN_ONLY, "foreign_admin": 404, "*": 200}),
    ("POST", "/threads/{other_thread}/reply-address", {**ADMIN_ONLY, "foreign_admin": 404, "*": 302}),
    ("GET", "/audit", {**ADMIN_ONLY, "foreign_admin": 200, "*": 200}),
    ("GET", "/audit?family={scheduled}&person={senior2}", {**ADMIN_ONLY, "foreign_admin": 200, "*": 200}),
    ("GET", "/settings/api-keys", {**ADMIN_ONLY, "foreign_admin": 200, "*": 200}),
    ("POST", "/settings/api-keys", {**ADMIN_ONLY, "foreign_admin": 400, "*": 400}),  # no name in the matrix's form
    ("POST", "/settings/api-keys/{api_key}/revoke", {**ADMIN_ONLY, "foreign_admin": 404, "*": 302}),
    ("GET", "/settings/webhooks", {**ADMIN_ONLY, "foreign_admin": 200, "*": 200}),
    ("POST", "/settings/webhooks", {**ADMIN_ONLY, "foreign_admin": 400, "*": 400}),  # no URL in the matrix's form
    ("GET", "/settings/webhooks/{webhook}", {**ADMIN_ONLY, "foreign_admin": 404, "*": 200}),
    ("POST", "/settings/webhooks/{webhook}/test", {**ADMIN_ONLY, "foreign_admin": 404, "*": 302}),
    ("POST", "/settings/webhooks/{webhook}/deliveries/{webhook_delivery}/resend", {**ADMIN_ONLY, "foreign_admin": 404, "*": 302}),
    ("POST", "/settings/webhooks/{webhook}/disable", {**ADMIN_ONLY, "foreign_admin": 404, "*": 302}),
    ("POST", "/signout", {"*": 302}),
]


def _ids(world: World) -> dict[str, int]:
    return {
        "thread": world.thread.id,
        "other_thread": world.other_thread.id,
        "scheduled": world.scheduled.id,
        "other": world.other.id,
        "image": world.image.id,
        "other_image": world.other_image.id,
        "held": world.held.id,
        "held2": world.held2.id,
        "senior2": world.senior2.id,
        "foreign_senior": world.foreign_senior.id,
        "senior2_session": world.senior2_session_id,
        "contact": world.scheduled.contacts[0].id,
        "address": world.scheduled.contacts[0].addresses[0].id,
        "foreign_address": world.foreign_family.contacts[0].addresses[0].id,
        "pet": world.scheduled.pets[0].id,
        "appointment": world.appointment_id,
        "foreign_appointment": world.foreign_appointment_id,
        "foreign_pet": world.foreign_family.pets[0].id,
        "api_key": world.api_key_id,
        "webhook": world.webhook_id,
        "webhook_delivery": world.webhook_delivery_id,
        "image_link": f"{world.image.id}/{attachment_token(SECRET, world.image.id)}",
        "bad_token": attachment_token("another-secret", world.image.id),
    }


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(role: str, app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    staff = {
        "basic": world.basic,
        "senior": world.senior,
        "admin": world.admin,
        "foreign": world.foreign_senior,
        "foreign_admin": world.foreign_admin,
    }.get(role)
    contact_id = world.scheduled.contacts[0].id
    ids = _ids(world)
    db.rollback()
    failures = []
    for method, template, expected in MATRIX:
        if staff is not None:
            sign_in_as(app, client, staff)
        path = template.format(**ids)
        if method == "GET":
            response = client.get(path)
        else:
            data = {"csrf_token": csrf_token(client), "body": f"hello from {role}", "contact_id": str(contact_id), "from": "x@y.test"}
            response = client.post(path, data=data)
        want = expected.get(role, expected.get("foreign") if role == "foreign_admin" and "foreign" in expected else expected.get("*"))
        if response.status_code != want:
            failures.append(f"{method} {path}: {response.status_code}, expected {want}")
    assert not failures, "\n".join(failures)


def test_basic_staff_never_see_a_link_to_another_family(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    other_paths = [f"/families/{world.other.id}", f"/threads/{world.other_thread.id}", f"/attachments/{world.other_image.id}"]
    visited = ["/today", f"/families/{world.scheduled.id}", f"/threads/{world.thread.id}"]
    db.rollback()
    sign_in_as(app, client, world.basic)
    for path in visited:
        page = client.get(path, follow_redirects=True).get_data(as_text=True)
        assert "Johnson family" in page
        for other in other_paths:
            assert f'"{other}"' not in page, f"{path} links to {other}"
        assert "Garcia" not in page and "Luna" not in page
        assert 'href="/messages"' not in page  # no Messages tab, no inbox


def test_search_and_inbox_stay_inside_the_business(app: Flask, client: FlaskClient, world: World, db: Session) -> None:
    db.rollback()
    sign_in_as(app, client, world.foreign_senior)
    results = client.get("/api/search?q=bella").get_json()["results"]
    assert [r["family"] for r in results] == ["Bellamy family"]
    inbox = client.get("/messages").get_data(as_text=True)
    assert "Bellamy family" in inbox and "Johnson family" not in inbox
    unread = client.get(f"/api/unread?ids={world.thread.id},{world.foreign_thread.id}").get_json()
    assert unread["unread"] == [world.foreign_thread.id]
