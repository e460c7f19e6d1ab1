"""A business's own delays (set on its settings page) rule its digests and escalations; a
business that never set them follows the deployment's."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from outbound import sweep, tasks
from tests.outbound.world import T0, build_world, outbox_rows, post
from threads.models import Business


def test_a_business_with_a_shorter_digest_delay_is_emailed_sooner(settings, sessions, sink) -> None:
    world = build_world(sessions)
    with sessions() as session, session.begin():
        session.execute(update(Business).where(Business.id == world.business_id).values(notify_delay_seconds=30))
    post(sessions, world, ("staff", world.walker_id), "Bella was great", T0)
    assert tasks.run_digests([world.thread_id], now=T0 + timedelta(seconds=20)) == []
    with sessions() as session:
        assert sweep.due_digest_threads(session, settings, T0 + timedelta(seconds=31)) == [world.thread_id]
    assert len(tasks.run_digests([world.thread_id], now=T0 + timedelta(seconds=31))) == 2  # not 180 s
    assert len(outbox_rows(sessions, "digest")) == 2


def test_a_business_that_never_set_a_delay_follows_the_deployment(settings, sessions, sink) -> None:
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Bella was great", T0)
    assert tasks.run_digests([world.thread_id], now=T0 + timedelta(seconds=31)) == []
    assert len(tasks.run_digests([world.thread_id], now=T0 + timedelta(seconds=settings.notify_delay_seconds))) == 2


def test_escalations_follow_the_business_delay(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    with sessions() as session, session.begin():
        session.execute(update(Business).where(Business.id == world.business_id).values(escalate_after_minutes=5))
    post(sessions, world, ("contact", world.primary_id), "Is Bella OK?", T0)
    with sessions() as session:
        assert sweep.due_escalations(session, settings, T0 + timedelta(minutes=6)) == [world.thread_id]
    created = tasks.run_escalations([world.thread_id], now=T0 + timedelta(minutes=6))
    assert created and all(row.kind == "escalation" for row in outbox_rows(sessions, "escalation"))
    escalation = [item for item in handler.received if "unanswered" in str(item.message["From"])]
    assert escalation and "5 minutes" in escalation[0].message.get_body(("plain",)).get_content()
