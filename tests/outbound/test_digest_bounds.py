"""What one digest holds (issue 11, point 13): a bounded number of messages and of text,
the rest in the next digest; a digest too big to send is a recorded failure, not a retry
loop, and never stops the other parent's digests. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from outbound import compose, digests, outbox, tasks
from tests.outbound.test_batches import DUE, delivered
from tests.outbound.world import T0, build_world, carried, outbox_rows, post
from threads.models import NotifiedCursor


def _text(item) -> str:  # type: ignore[no-untyped-def]
    part = item.message.get_body(("plain",))
    assert part is not None
    return part.get_content()


def test_a_long_backlog_is_split_over_digests_and_every_message_arrives_once(settings, sessions, sink, monkeypatch) -> None:
    handler, _ = sink
    monkeypatch.setattr(digests, "MAX_DIGEST_MESSAGES", 3)
    world = build_world(sessions)
    posted = [post(sessions, world, ("staff", world.walker_id), f"Update {n}", T0 + timedelta(seconds=n)) for n in range(5)]

    first = tasks.run_digests([world.thread_id], now=DUE + timedelta(seconds=5))
    assert len(first) == 2  # one per parent
    assert [carried(sessions, outbox_id) for outbox_id in first] == [posted[:3], posted[:3]]
    text = _text(handler.received[0])
    assert "Update 2" in text and "Update 3" not in text
    assert "2 more messages from Happy Tails follow in the next email." in text

    # The rest is still owed: the sweep finds it and the next digest carries it.
    later = DUE + timedelta(minutes=1)
    assert tasks.run_sweep(later).digest_thread_ids == [world.thread_id]
    second = tasks.run_digests([world.thread_id], now=later)
    assert [carried(sessions, outbox_id) for outbox_id in second] == [posted[3:], posted[3:]]
    assert "more message" not in _text(handler.received[-1])
    assert delivered(handler) == sorted([world.primary_email, world.secondary_email] * 2)
    assert tasks.run_sweep(later + timedelta(minutes=1)).digest_thread_ids == []


def test_huge_messages_are_cut_in_the_digest_and_its_text_is_bounded(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    huge = "Bella ran along the river and back again.\n" * 60_000  # 2.5 MB, posted before the cap existed
    for n in range(4):
        post(sessions, world, ("staff", world.walker_id), f"Day {n}\n{huge}", T0 + timedelta(seconds=n))

    created = tasks.run_digests([world.thread_id], now=DUE + timedelta(seconds=5))
    assert len(created) == 2
    for item in handler.received:
        assert len(item.raw) < 3 * digests.MAX_DIGEST_TEXT_CHARS  # not 10 MB of text per parent
        text = _text(item)
        assert compose.CUT_NOTE in text and "Day 0" in text
    assert {row.state for row in outbox_rows(sessions, "digest")} == {"sent"}


def test_a_digest_too_big_to_send_is_recorded_failed_and_never_retried(settings, sessions, sink, monkeypatch) -> None:
    handler, _ = sink
    monkeypatch.setattr(outbox, "MAX_EMAIL_BYTES", 2_000)
    world = build_world(sessions)
    message = post(sessions, world, ("staff", world.walker_id), "A walk report " * 200, T0)

    assert len(tasks.run_digests([world.thread_id], now=DUE)) == 2
    rows = outbox_rows(sessions, "digest")
    assert {row.state for row in rows} == {"failed"}
    assert all(row.last_error is not None and row.last_error.startswith("too big to send") for row in rows)
    assert handler.received == []
    # Recorded, not retried: nothing is owed any more, and the next message starts afresh.
    assert tasks.run_sweep(DUE + timedelta(minutes=5)).digest_thread_ids == []
    with sessions() as session:
        cursors = {c.person_id: c.message_id for c in session.query(NotifiedCursor).filter_by(thread_id=world.thread_id)}
    assert cursors == {world.primary_id: message, world.secondary_id: message}
    monkeypatch.undo()
    post(sessions, world, ("staff", world.walker_id), "Short one", DUE)
    assert len(tasks.run_digests([world.thread_id], now=DUE + timedelta(minutes=4))) == 2
    assert len(handler.received) == 2


@pytest.mark.parametrize("fault", [MemoryError, ValueError])
def test_a_thread_whose_digests_cannot_be_decided_is_recorded_failed(settings, sessions, sink, monkeypatch, fault) -> None:
    """A fault outside rendering (here raised where the texts are read) fails the batch and
    then the thread alone: its digests are recorded failed instead of retried by every sweep."""
    handler, _ = sink
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Walk done", T0)

    def broken(session, due):  # type: ignore[no-untyped-def]
        raise fault("a digest too big to build")

    monkeypatch.setattr(digests, "_bodies", broken)
    assert tasks.run_digests([world.thread_id], now=DUE) == []
    rows = outbox_rows(sessions, "digest")
    assert sorted(row.recipient_email for row in rows) == sorted([world.primary_email, world.secondary_email])
    assert {row.state for row in rows} == {"failed"}
    assert all(row.last_error == f"digest could not be built ({fault.__name__})" for row in rows)
    assert tasks.run_sweep(DUE + timedelta(minutes=5)).digest_thread_ids == []
    assert handler.received == []
