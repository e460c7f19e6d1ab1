"""`GET /metrics`: Prometheus text read from the database at scrape time.

Counting from the tables (not from in-process counters) gives the same answer from every
gunicorn worker and survives restarts; every figure is an aggregate, never a name or a body.
The figures span every business, so only the scraper holding `PAWPOST_METRICS_TOKEN` reads
them (`Authorization: Bearer …`); without a token configured the page does not exist.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator

from flask import Blueprint, Response, abort, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outbound.queue import huey
from portal.runtime import db, now, settings
from threads.models import INBOUND_OUTCOMES, OUTBOX_KINDS, OUTBOX_STATES, InboundEmail, OutboundEmail

logger = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)


class DatabaseCollector(Collector):
    """Inbound outcomes, outbox states, queue lag and digests sent, as of this scrape."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        inbound = CounterMetricFamily("pawpost_inbound_emails", "Emails accepted by the SMTP server, by outcome", labels=["outcome"])
        counts = dict(self.session.execute(select(InboundEmail.outcome, func.count()).group_by(InboundEmail.outcome)).all())
        for outcome in INBOUND_OUTCOMES:
            inbound.add_metric([outcome], counts.get(outcome, 0))
        yield inbound

        outbox = GaugeMetricFamily("pawpost_outbox_emails", "Outbox rows by kind and state", labels=["kind", "state"])
        rows = self.session.execute(
            select(OutboundEmail.kind, OutboundEmail.state, func.count()).group_by(OutboundEmail.kind, OutboundEmail.state)
        ).all()
        by_key = {(kind, state): count for kind, state, count in rows}
        for kind in OUTBOX_KINDS:
            for state in OUTBOX_STATES:
                outbox.add_metric([kind, state], by_key.get((kind, state), 0))
        yield outbox

        digests = CounterMetricFamily("pawpost_digests_sent", "Parent digests handed to the relay")
        digests.add_metric([], by_key.get(("digest", "sent"), 0))
        yield digests

        oldest = self.session.scalar(
            select(func.min(func.coalesce(OutboundEmail.next_attempt_at, OutboundEmail.created_at))).where(
                OutboundEmail.state == "queued"
            )
        )
        lag = GaugeMetricFamily(
            "pawpost_outbox_lag_seconds", "How long the oldest queued email has been due (0 when none is)"
        )
        lag.add_metric([], max(0.0, (now() - oldest).total_seconds()) if oldest else 0.0)
        yield lag

        pending = GaugeMetricFamily("pawpost_queue_pending_tasks", "Tasks waiting in the huey queue")
        try:
            pending.add_metric([], huey.pending_count())
        except Exception:  # the queue is down: say so by omission, the rest still counts
            logger.warning("metrics: queue unreachable")
        else:
            yield pending


def bearer_token_matches(expected: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


@bp.get("/metrics")
def metrics() -> Response:
    expected = settings().metrics_token
    if not expected:
        abort(404)
    if not bearer_token_matches(expected):
        return Response("a bearer token is required\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'}, mimetype="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(db()))
    body = generate_latest(registry)
    db().rollback()
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
