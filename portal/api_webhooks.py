"""Webhook endpoints over the API (scope `webhooks:manage`): list, register (the secret is in
the answer once), read with recent deliveries, send a test event, delete. Same core as the
admin pages (threads/webhooks.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select

from outbound.tasks import push_webhooks
from portal.api import ApiProblem, after_commit, api_key, operation
from portal.runtime import db, now, settings
from threads.models import WEBHOOK_EVENTS, WebhookDelivery, WebhookEndpoint
from threads.webhooks import EndpointProblems, create_endpoint, emit_event

SCOPE = "webhooks:manage"


class Endpoint(BaseModel):
    id: int
    url: str
    events: list[str]
    active: bool
    disabled_reason: str | None
    created_at: datetime


class EndpointList(BaseModel):
    data: list[Endpoint]


class NewEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000, description="https:// (http:// to loopback in development)")
    events: list[str] = Field(min_length=1, max_length=len(WEBHOOK_EVENTS), description=f"Any of {', '.join(WEBHOOK_EVENTS)}")


class CreatedEndpoint(Endpoint):
    secret: str = Field(description="The signing secret (Standard Webhooks `whsec_…`), shown only in this answer")


class TestEvent(BaseModel):
    delivery_ids: list[int]


def _record(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"id": endpoint.id, "url": endpoint.url, "events": endpoint.event_list, "active": endpoint.active, "disabled_reason": endpoint.disabled_reason, "created_at": endpoint.created_at}


def _endpoint(endpoint_id: str) -> WebhookEndpoint:
    found = None
    if endpoint_id.isascii() and endpoint_id.isdigit() and len(endpoint_id) <= 9:
        found = db().scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == int(endpoint_id), WebhookEndpoint.business_id == api_key().business_id))
    if found is None:
        raise ApiProblem(404, "not-found", "No such webhook endpoint", f"no endpoint {endpoint_id[:40]!r}")
    return found


@operation("GET", "/webhook-endpoints", scope=SCOPE, summary="List webhook endpoints", response=EndpointList)
def list_endpoints() -> dict[str, Any]:
    rows = db().scalars(select(WebhookEndpoint).where(WebhookEndpoint.business_id == api_key().business_id).order_by(WebhookEndpoint.id)).all()
    return {"data": [_record(e) for e in rows]}


@operation("POST", "/webhook-endpoints", scope=SCOPE, summary="Register a webhook endpoint", response=CreatedEndpoint, status=201, body=NewEndpoint, problems=(415,))
def register_endpoint(body: NewEndpoint) -> dict[str, Any]:
    try:
        endpoint, secret = create_endpoint(
            db(), api_key().business_id, url=body.url, events=body.events, development=settings().development, secret_key=settings().secret_key, now=now()
        )
    except EndpointProblems as error:
        raise ApiProblem(422, "invalid-request", "Invalid request", "the endpoint was refused", errors=[{"pointer": f"/{k}", "in": "body", "detail": v} for k, v in error.problems.items()]) from None
    return {**_record(endpoint), "secret": secret}


@operation("GET", "/webhook-endpoints/{endpoint_id}", scope=SCOPE, summary="Read a webhook endpoint", response=Endpoint, problems=(404,))
def get_endpoint(endpoint_id: str) -> dict[str, Any]:
    return _record(_endpoint(endpoint_id))


@operation("POST", "/webhook-endpoints/{endpoint_id}/test", scope=SCOPE, summary="Send a webhook.test event to the endpoint", response=TestEvent, status=202, problems=(404,))
def test_endpoint(endpoint_id: str) -> dict[str, Any]:
    endpoint = _endpoint(endpoint_id)
    if not endpoint.active:
        raise ApiProblem(409, "endpoint-disabled", "Endpoint disabled", endpoint.disabled_reason or "this endpoint is disabled")
    ids = emit_event(db(), endpoint.business_id, "webhook.test", {"message": "A test event from Pawpost"}, now(), endpoint_ids=[endpoint.id])
    after_commit(lambda: push_webhooks(ids))
    return {"delivery_ids": ids}


@operation("DELETE", "/webhook-endpoints/{endpoint_id}", scope=SCOPE, summary="Delete a webhook endpoint and its delivery log", response=None, status=204, problems=(404,))
def delete_endpoint(endpoint_id: str) -> None:
    endpoint = _endpoint(endpoint_id)
    db().execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    db().delete(endpoint)
