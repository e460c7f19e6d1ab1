"""Digests decided and sent a batch of threads at a time, on SQLite and PostgreSQL.

One transaction decides a batch; one SMTP connection sends it; one commit records what
the relay said. These tests hold that to the same promises as one thread at a time:
every owed message reaches every parent exactly once, one recipient's failure stays
theirs, and two workers handed the same threads never double a digest.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update

from outbound import digests, outbox, tasks
from tests.factories import make_business, make_family, make_staff, thread_of
from tests.outbound.world import T0, carried, outbox_rows
from threads.models import ContactAddress, NotifiedCursor, OutboundEmail, Thread
from threads.posting import post_message

DUE = T0 + timedelta(seconds=180)
postgres_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@dataclass(frozen=True)
class Families:
    thread_ids: list[int]
    message_ids: dict[int, int]  # thread → the staff message posted in it
    addresses: dict[int, list[str]]  # thread → its parents' addresses


def build_families(sessions, count: int, at: datetime = T0) -> Families:  # type: ignore[no-untyped-def]
    """`count` two-parent families of one business, each with one staff message at `at`."""
    with sessions() as session, session.begin():
        business = make_business(session)
        staff = make_staff(session, business, name="Priya Patel")
        thread_ids, message_ids, addresses = [], {}, {}
        for n in range(count):
            family = make_family(session, business, name=f"Family {n}")
            thread = thread_of(session, family)
            message_ids[thread.id] = post_message(session, thread, staff, f"Walk {n} done", now=at).id
            addresses[thread.id] = sorted(c.email for c in family.contacts)
            thread_ids.append(thread.id)
    return Families(thread_ids, message_ids, addresses)


def delivered(handler) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(r for item in handler.received for r in item.rcpt_tos)


def test_one_batch_sends_every_parent_their_own_digest_once(settings, sessions, sink) -> None:
    handler, _ = sink
    families = build_families(sessions, 7)

    created = tasks.run_digests(families.thread_ids + families.thread_ids[:3], now=DUE)
    assert tasks.run_digests(families.thread_ids, now=DUE + timedelta(minutes=5)) == []

    everyone = sorted(a for addresses in families.addresses.values() for a in addresses)
    assert len(created) == 14 and delivered(handler) == everyone
    for row in outbox_rows(sessions, "digest"):
        assert row.state == "sent"
        assert carried(sessions, row.id) == [families.message_ids[row.thread_id]]
        assert row.recipient_email in families.addresses[row.thread_id]
    for item in handler.received:  # each email is about its recipient's own family
        thread_id = next(t for t, a in families.addresses.items() if item.rcpt_tos[0] in a)
        body = item.message.get_body(("plain",)).get_content()
        assert f"Walk {families.thread_ids.index(thread_id)} done" in body
    with sessions() as session:
        cursors = session.execute(select(NotifiedCursor.thread_id, NotifiedCursor.message_id)).all()
    assert sorted(cursors) == sorted((t, m) for t, m in families.message_ids.items() for _ in range(2))


def test_one_refused_recipient_fails_alone_and_the_rest_of_the_batch_goes_out(settings, sessions, sink) -> None:
    handler, _ = sink
    families = build_families(sessions, 4)
    unknown, rejected = families.addresses[families.thread_ids[1]][0], families.addresses[families.thread_ids[2]][1]
    handler.refuse = {unknown: "550 5.1.1 no such mailbox", rejected: "554 5.7.1 policy rejection"}

    tasks.run_digests(families.thread_ids, now=DUE)

    states = {row.recipient_email: row for row in outbox_rows(sessions, "digest")}
    assert states[unknown].state == "bounced" and "5.1.1" in (states[unknown].last_error or "")
    assert states[rejected].state == "failed" and "5.7.1" in (states[rejected].last_error or "")
    others = sorted(set(states) - {unknown, rejected})
    assert delivered(handler) == others and {states[a].state for a in others} == {"sent"}
    with sessions() as session:
        assert session.scalars(select(ContactAddress.email).where(ContactAddress.bouncing)).all() == [unknown]
    # Nothing is sent twice when the sweep comes by.
    later = DUE + timedelta(minutes=10)
    tasks.run_due_inline(tasks.run_sweep(later), later)
    assert delivered(handler) == others


def test_a_temporary_refusal_inside_a_batch_is_retried_alone(settings, sessions, sink) -> None:
    handler, _ = sink
    families = build_families(sessions, 3)
    busy = families.addresses[families.thread_ids[0]][1]
    handler.refuse = {busy: "451 4.3.0 greylisted"}
    tasks.run_digests(families.thread_ids, now=DUE)
    assert busy not in delivered(handler) and len(handler.received) == 5

    handler.refuse = {}
    for seconds in (40, 400):
        now = DUE + timedelta(seconds=seconds)
        tasks.run_due_inline(tasks.run_sweep(now), now)

    assert delivered(handler).count(busy) == 1 and len(handler.received) == 6
    assert {row.state for row in outbox_rows(sessions, "digest")} == {"sent"}


def test_one_familys_unrenderable_address_does_not_stop_the_batch(settings, sessions, sink) -> None:
    """The digest that cannot be built is recorded `failed` with its reason (never retried
    forever); every other digest goes out, the same family's other parent's included."""
    handler, _ = sink
    families = build_families(sessions, 3)
    bad_thread = families.thread_ids[1]
    bad_address, other_parent = families.addresses[bad_thread][0], families.addresses[bad_thread][1]
    with sessions() as session, session.begin():
        session.execute(update(ContactAddress).where(ContactAddress.email == bad_address).values(email="not an <address>"))

    tasks.run_digests(families.thread_ids, now=DUE)

    good = sorted([a for t in families.thread_ids if t != bad_thread for a in families.addresses[t]] + [other_parent])
    assert delivered(handler) == good
    [failed] = [row for row in outbox_rows(sessions, "digest") if row.state == "failed"]
    assert failed.thread_id == bad_thread and failed.recipient_email == "not an <address>"
    assert failed.last_error is not None and "could not be built" in failed.last_error
    # Nothing is left owed: the sweep finds no digest to retry.
    assert tasks.run_sweep(DUE + timedelta(minutes=1)).digest_thread_ids == []


def test_a_batch_that_outruns_its_send_window_leaves_the_rest_to_the_next_delivery(settings, sessions, sink, monkeypatch) -> None:
    handler, _ = sink
    families = build_families(sessions, 2)
    monkeypatch.setattr(outbox, "SEND_WINDOW", timedelta(seconds=-1))  # every send is "too late"
    created = tasks.run_digests(families.thread_ids, now=DUE)
    assert handler.received == []
    rows = outbox_rows(sessions, "digest")
    assert {(row.state, row.attempts) for row in rows} == {("queued", 0)}  # the attempt given back

    monkeypatch.undo()
    tasks.run_due_inline(tasks.run_sweep(DUE + timedelta(seconds=5)), DUE + timedelta(seconds=5))
    assert len(created) == 4 and len(handler.received) == 4
    assert {row.state for row in outbox_rows(sessions, "digest")} == {"sent"}


@postgres_only
def test_two_workers_given_overlapping_batches_split_them_and_never_double_a_digest(settings, sessions) -> None:
    """Two open transactions on PostgreSQL: the second skips the threads the first holds
    (reporting them busy) instead of waiting, and finds nothing owed once they commit."""
    families = build_families(sessions, 6)
    ids = families.thread_ids
    with sessions() as first, first.begin():
        held = digests.plan_digest_batch(first, settings, ids[:3], DUE)
        assert len(held.outbox_ids) == 6
        with sessions() as second, second.begin():
            other = digests.plan_digest_batch(second, settings, ids, DUE)
        assert other.busy == ids[:3] and len(other.outbox_ids) == 6
    with sessions() as again, again.begin():
        retry = digests.plan_digest_batch(again, settings, other.busy, DUE)
    assert retry.outbox_ids == [] and retry.busy == []

    rows = outbox_rows(sessions, "digest")
    assert sorted(row.recipient_email for row in rows) == sorted(a for t in ids for a in families.addresses[t])
    assert all(carried(sessions, row.id) == [families.message_ids[row.thread_id]] for row in rows)


@postgres_only
def test_a_worker_waiting_for_the_lock_re_decides_after_the_other_commits(settings, sessions, engine) -> None:
    """The blocking path (`wait=True`, one thread's task): a second session blocked on the
    first's row locks reads the cursors the first committed and writes nothing."""
    families = build_families(sessions, 2)
    outcome: dict[str, object] = {}

    def second_worker() -> None:
        try:
            with sessions() as session, session.begin():
                outcome["decision"] = digests.plan_digest_batch(session, settings, families.thread_ids, DUE, wait=True)
        except Exception as error:  # reported to the test below
            outcome["error"] = error

    with sessions() as first, first.begin():
        assert len(digests.plan_digest_batch(first, settings, families.thread_ids, DUE).outbox_ids) == 4
        worker = threading.Thread(target=second_worker)
        worker.start()
        _wait_for_a_lock_wait(engine)
    worker.join(30)

    assert "error" not in outcome and not worker.is_alive()
    assert outcome["decision"].outbox_ids == []  # type: ignore[union-attr]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboundEmail)) == 4


def _wait_for_a_lock_wait(engine) -> None:  # type: ignore[no-untyped-def]
    """Until some session of this database waits on a row lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(600):
        with engine.connect() as connection:
            if connection.scalar(query):
                return
        threading.Event().wait(0.05)
    raise AssertionError("the second worker never waited for the lock")


def test_threads_that_are_gone_or_inactive_are_not_reported_busy(settings, sessions) -> None:
    families = build_families(sessions, 2)
    with sessions() as session, session.begin():
        session.execute(update(Thread).where(Thread.id == families.thread_ids[0]).values(active=False))
    with sessions() as session, session.begin():
        decision = digests.plan_digest_batch(session, settings, families.thread_ids + [10_000], DUE)
    assert decision.busy == [] and len(decision.outbox_ids) == 2
