"""Issue 14, point 2 (rule 7): each contact's own email choice, on SQLite and PostgreSQL.

A paused contact gets no digest while the other parent still does and staff alerts go on;
a daily-summary contact gets one email a day at their local time, across both DST changes
of the business's zone (America/New_York), on a fake clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from outbound import tasks
from tests.outbound.test_batches import delivered
from tests.outbound.world import T0, World, build_world, carried, outbox_rows, post
from threads.email_choice import set_email_choice
from threads.models import Contact


def choose(sessions, world: World, contact_id: int, choice: str, at: datetime, minute: int | None = None) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session, session.begin():
        contact = session.get(Contact, contact_id)
        assert contact is not None
        set_email_choice(session, contact, choice, at, minute)


def test_a_paused_parent_gets_nothing_and_the_other_parent_and_staff_go_on(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    choose(sessions, world, world.secondary_id, "paused", T0)
    post(sessions, world, ("staff", world.walker_id), "Bella had a lovely walk", T0)

    assert tasks.run_sweep(T0 + timedelta(minutes=5)).digest_thread_ids == [world.thread_id]
    tasks.run_digests([world.thread_id], now=T0 + timedelta(minutes=5))
    assert delivered(handler) == [world.primary_email]
    # The paused parent's unread message never makes the sweep come back for it.
    assert tasks.run_sweep(T0 + timedelta(minutes=10)).digest_thread_ids == []

    # Their own replies still post and alert the scheduled walker at once.
    reply = post(sessions, world, ("contact", world.secondary_id), "Thanks!", T0 + timedelta(minutes=11))
    tasks.run_posted_message(reply, now=T0 + timedelta(minutes=11))
    assert world.walker_email in delivered(handler)
    # Un-pausing brings back the default: the next staff message reaches them again.
    choose(sessions, world, world.secondary_id, "each", T0 + timedelta(minutes=12))
    post(sessions, world, ("staff", world.walker_id), "Back home", T0 + timedelta(minutes=13))
    tasks.run_digests([world.thread_id], now=T0 + timedelta(minutes=20))
    assert delivered(handler).count(world.secondary_email) == 1


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_daily_summary_comes_at_the_chosen_local_time_across_the_autumn_change(settings, sessions, sink) -> None:
    handler, _ = sink
    start = _utc(2026, 10, 30, 16, 0)  # Friday 12:00 EDT
    world = build_world(sessions, now=start)
    choose(sessions, world, world.secondary_id, "daily", start, minute=90)  # 01:30 local
    first = post(sessions, world, ("staff", world.walker_id), "Friday update", start + timedelta(hours=1))
    tasks.run_digests([world.thread_id], now=start + timedelta(hours=1, minutes=5))
    assert delivered(handler) == [world.primary_email]  # the "each message" parent only

    assert tasks.run_daily_summaries(_utc(2026, 10, 31, 5, 29)) == []  # 01:29 EDT
    saturday = tasks.run_daily_summaries(_utc(2026, 10, 31, 5, 30))  # 01:30 EDT
    assert [carried(sessions, i) for i in saturday] == [[first]]
    assert delivered(handler).count(world.secondary_email) == 1

    second = post(sessions, world, ("staff", world.walker_id), "Saturday update", _utc(2026, 10, 31, 20, 0))
    sunday = tasks.run_daily_summaries(_utc(2026, 11, 1, 5, 30))  # 01:30 EDT, before the change
    assert [carried(sessions, i) for i in sunday] == [[second]]
    third = post(sessions, world, ("staff", world.walker_id), "Late Saturday", _utc(2026, 11, 1, 5, 45))
    # 01:30 again, now EST: the repeated hour does not send a second summary that day.
    assert tasks.run_daily_summaries(_utc(2026, 11, 1, 6, 30)) == []
    assert tasks.run_daily_summaries(_utc(2026, 11, 2, 6, 29)) == []  # Monday 01:29 EST
    monday = tasks.run_daily_summaries(_utc(2026, 11, 2, 6, 30))  # 01:30 EST = 06:30 UTC now
    assert [carried(sessions, i) for i in monday] == [[third]]
    assert tasks.run_daily_summaries(_utc(2026, 11, 2, 23, 0)) == []
    assert delivered(handler).count(world.secondary_email) == 3
    assert {row.kind for row in outbox_rows(sessions)} == {"digest"}


def test_a_summary_time_in_the_skipped_spring_hour_comes_right_after_it(settings, sessions, sink) -> None:
    start = _utc(2026, 3, 7, 17, 0)  # Saturday 12:00 EST
    world = build_world(sessions, now=start)
    choose(sessions, world, world.primary_id, "daily", start, minute=150)  # 02:30, skipped on 8 March
    message = post(sessions, world, ("staff", world.walker_id), "Saturday walk", start + timedelta(hours=1))
    assert tasks.run_daily_summaries(_utc(2026, 3, 8, 6, 59)) == []  # 01:59 EST
    sent = tasks.run_daily_summaries(_utc(2026, 3, 8, 7, 0))  # 03:00 EDT: the first minute after
    assert [carried(sessions, i) for i in sent] == [[message]]
    assert tasks.run_daily_summaries(_utc(2026, 3, 8, 7, 30)) == []


def test_choosing_a_daily_time_already_past_today_starts_tomorrow(settings, sessions, sink) -> None:
    world = build_world(sessions)  # T0 is 11:00 in New York
    choose(sessions, world, world.primary_id, "daily", T0, minute=9 * 60)
    post(sessions, world, ("staff", world.walker_id), "Morning walk", T0)
    assert tasks.run_daily_summaries(T0 + timedelta(minutes=10)) == []
    assert len(tasks.run_daily_summaries(T0 + timedelta(hours=22))) == 1  # 09:00 the next day
