"""The Webhooks pages (admins): register an endpoint (its signing secret shown once), see an
endpoint's delivery log (attempts, status, latency, the receiver's first words), resend a
delivery, send a test event, disable. Another business's endpoints answer 404."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from outbound.tasks import push_webhooks
from portal.audit import note
from portal.auth import current_staff, requires
from portal.runtime import db, now, settings
from threads.errors import UnknownStaff
from threads.models import WEBHOOK_EVENTS, WebhookDelivery, WebhookEndpoint
from threads.webhooks import EndpointProblems, create_endpoint, disable_endpoint, emit_event, resend

bp = Blueprint("webhooks", __name__)
LOG_ROWS = 50


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    found = db().scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.business_id == current_staff().business_id))
    if found is None:
        raise UnknownStaff(f"no webhook endpoint {endpoint_id}")  # answers 404
    return found


def _list(form: dict[str, Any] | None = None, errors: dict[str, str] | None = None) -> str:
    endpoints = db().scalars(select(WebhookEndpoint).where(WebhookEndpoint.business_id == current_staff().business_id).order_by(WebhookEndpoint.id)).all()
    return render_template("webhooks.html", endpoints=endpoints, events=WEBHOOK_EVENTS, form=form or {"url": "", "events": ["message.created"]}, errors=errors or {})


@bp.get("/settings/webhooks")
@requires("admin")
def index() -> str:
    return _list()


@bp.post("/settings/webhooks")
@requires("admin")
def create() -> Any:
    form = {"url": request.form.get("url", "")[:2100], "events": request.form.getlist("events")[: len(WEBHOOK_EVENTS) + 1]}
    try:
        endpoint, secret = create_endpoint(
            db(), current_staff().business_id, url=form["url"], events=form["events"], development=settings().development, secret_key=settings().secret_key, now=now()
        )
    except EndpointProblems as error:
        db().rollback()
        return _list(form, error.problems), 400
    note("webhook.create", f"Added webhook endpoint {endpoint.url[:200]}", after={"events": endpoint.event_list})
    db().commit()
    # The secret is in this answer only (never in a redirect or a flash cookie).
    return _page(endpoint, secret=secret), 201


def _page(endpoint: WebhookEndpoint, secret: str | None = None) -> str:
    deliveries = db().scalars(
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id).options(selectinload(WebhookDelivery.log)).order_by(WebhookDelivery.id.desc()).limit(LOG_ROWS)
    ).all()
    return render_template("webhook_endpoint.html", endpoint=endpoint, deliveries=deliveries, secret=secret)


@bp.get("/settings/webhooks/<int:endpoint_id>")
@requires("admin")
def show(endpoint_id: int) -> str:
    return _page(_endpoint(endpoint_id))


@bp.post("/settings/webhooks/<int:endpoint_id>/test")
@requires("admin")
def send_test(endpoint_id: int) -> Response:
    endpoint = _endpoint(endpoint_id)
    if not endpoint.active:
        flash("This endpoint is disabled.")
        return redirect(url_for("webhooks.show", endpoint_id=endpoint.id))
    data = {"message": "A test event from Pawpost", "sent_by": current_staff().name}
    ids = emit_event(db(), endpoint.business_id, "webhook.test", data, now(), endpoint_ids=[endpoint.id])
    db().commit()
    push_webhooks(ids)
    flash("Test event queued.")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint.id))


@bp.post("/settings/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/resend")
@requires("admin")
def resend_delivery(endpoint_id: int, delivery_id: int) -> Response:
    endpoint = _endpoint(endpoint_id)
    delivery = db().scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id))
    if delivery is None:
        raise UnknownStaff(f"no delivery {delivery_id}")
    resend(db(), delivery, now())
    db().commit()
    push_webhooks([delivery_id])
    flash("Delivery queued again.")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint.id))


@bp.post("/settings/webhooks/<int:endpoint_id>/disable")
@requires("admin")
def disable(endpoint_id: int) -> Response:
    endpoint = _endpoint(endpoint_id)
    disable_endpoint(db(), endpoint, f"disabled by {current_staff().name}")
    note("webhook.disable", f"Disabled webhook endpoint {endpoint.url[:200]}")
    db().commit()
    return redirect(url_for("webhooks.show", endpoint_id=endpoint.id))
