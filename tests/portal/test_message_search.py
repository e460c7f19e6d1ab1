"""Message search on both databases: word prefixes, access (rule 5), newest first, safe highlighting."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.portal.conftest import World, sign_in_as
from threads.models import Message, Staff, Thread
from threads.posting import post_message
from threads import search
from threads.search import search_messages, search_terms
from threads.types import utcnow


def _post(db: Session, thread_id: int, body: str, *, staff_id: int | None = None, minutes: int = 0, internal: bool = False) -> int:
    thread = db.get(Thread, thread_id)
    author = db.get(Staff, staff_id) if staff_id else thread.family.contacts[0]
    message = post_message(db, thread, author, body, source="portal" if staff_id else "email", internal=internal,
                           now=utcnow() + timedelta(minutes=minutes))
    db.commit()
    return message.id


def test_seniors_search_every_thread_of_their_business_only(db: Session, world: World) -> None:
    walk = _post(db, world.other_thread.id, "Luna went walking by the river", minutes=1)
    later = _post(db, world.thread.id, "Bella loves her walks", staff_id=world.senior.id, minutes=2)
    note = _post(db, world.thread.id, "Walker said Bella pulls", staff_id=world.senior.id, minutes=3, internal=True)
    _post(db, world.foreign_thread.id, "A walk for Bella next door")
    senior = db.get(Staff, world.senior.id)
    hits = search_messages(db, senior, "WALK", utcnow())
    assert [h.message_id for h in hits] == [note, later, walk]  # newest first, prefixes, never business B
    assert hits[0].internal and hits[1].author_name == "Sam Senior" and hits[2].family_name == "Garcia family"
    assert [h.message_id for h in search_messages(db, senior, "walk bella", utcnow())] == [note, later]
    assert search_messages(db, senior, "walk zebra", utcnow()) == []


def test_basic_staff_search_only_todays_families(db: Session, world: World) -> None:
    mine = _post(db, world.thread.id, "Bella limps a little after the walk")
    _post(db, world.other_thread.id, "Luna limps too")
    basic = db.get(Staff, world.basic.id)
    assert [h.message_id for h in search_messages(db, basic, "limps", utcnow())] == [mine]
    # Tomorrow the appointment is over: nothing to search.
    assert search_messages(db, basic, "limps", utcnow() + timedelta(days=2)) == []


def test_typed_syntax_is_only_words(db: Session, world: World) -> None:
    assert search_terms('bella" OR * NEAR(x) & !:* -- ; drop') == ["bella", "or", "near", "x", "drop"]
    assert search_messages(db, db.get(Staff, world.senior.id), '"*) OR (', utcnow()) == []
    edited = _post(db, world.thread.id, "first words")
    message = db.get(Message, edited)
    message.body = "changed text"
    db.commit()
    senior = db.get(Staff, world.senior.id)
    assert search_messages(db, senior, "first", utcnow()) == []
    assert [h.message_id for h in search_messages(db, senior, "changed", utcnow())] == [edited]


def test_the_page_escapes_then_marks_and_opens_the_thread_at_the_message(
    app: Flask, client: FlaskClient, world: World, db: Session
) -> None:
    hostile = _post(db, world.thread.id, "<script>alert('bella')</script> <b>Bella</b> is fine")
    sign_in_as(app, client, world.senior)
    page = client.get("/search?q=bella").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#39;<mark>bella</mark>&#39;)" in page
    assert "&lt;b&gt;<mark>Bella</mark>&lt;/b&gt;" in page
    assert f'href="/threads/{world.thread.id}?before={hostile + 1}#m{hostile}"' in page
    assert "Johnson family" in page and "Bellamy" not in page
    opened = client.get(f"/threads/{world.thread.id}?before={hostile + 1}").get_data(as_text=True)
    assert f'id="m{hostile}"' in opened
    assert "No messages contain" in client.get("/search?q=zebra").get_data(as_text=True)

    basic = app.test_client()
    sign_in_as(app, basic, world.basic)
    assert "Luna limps" not in basic.get("/search?q=luna").get_data(as_text=True)
    assert "<mark>Bella</mark> ate well" in basic.get("/search?q=bella").get_data(as_text=True)


def test_rare_words_past_the_newest_messages_come_from_the_index_in_the_same_order(
    db: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the newest 3 messages are read in id order: older hits must come from the index,
    # newest first, still within the business, and "rarest word first" must not lose any.
    monkeypatch.setattr(search, "RECENT_WINDOW", 3)
    monkeypatch.setattr(search, "RARITY_SAMPLE", 2)
    oldest = _post(db, world.other_thread.id, "Pickles had the longest walk", minutes=1)
    _post(db, world.foreign_thread.id, "Pickles next door had the walk too", minutes=2)
    middle = _post(db, world.thread.id, "The vet says Pickles is fine", staff_id=world.senior.id, minutes=3)
    for minute in range(4, 9):  # newer messages without the rare word
        _post(db, world.thread.id, f"the usual walk number {minute}", staff_id=world.senior.id, minutes=minute)
    newest = _post(db, world.thread.id, "pickles at the park", minutes=9)
    senior = db.get(Staff, world.senior.id)
    assert [h.message_id for h in search_messages(db, senior, "the pickles", utcnow())] == [newest, middle, oldest]
    assert [h.message_id for h in search_messages(db, senior, "pickle", utcnow(), limit=2)] == [newest, middle]
    walks = [h.message_id for h in search_messages(db, senior, "walk", utcnow())]
    assert len(walks) == 6 and walks == sorted(walks, reverse=True) and walks[-1] == oldest


def test_a_basic_search_for_a_number_finds_text_never_the_thread_it_is_in(db: Session, world: World) -> None:
    number = str(world.thread.id)
    plain = _post(db, world.thread.id, "Bella walked happily")
    with_number = _post(db, world.thread.id, f"Gate code is {number}0 today")
    basic = db.get(Staff, world.basic.id)
    hits = [h.message_id for h in search_messages(db, basic, number, utcnow())]
    assert with_number in hits and plain not in hits
