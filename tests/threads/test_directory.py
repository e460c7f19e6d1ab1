"""Family search and reply addresses on both databases."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests.factories import make_business, make_family, thread_of
from threads.addresses import (
    make_reply_address,
    new_reply_token,
    parse_reply_address,
    rotate_reply_token,
    thread_for_token,
)
from threads.directory import normalise_words, search_families


def test_search_is_partial_case_and_accent_insensitive(db: Session) -> None:
    business = make_business(db)
    garcia = make_family(db, business, name="García", contacts=("Sofía García",), pets=("Luna",))
    bella = make_family(db, business, name="Johnson", contacts=("Emma Johnson",), pets=("Bella",))
    make_family(db, business, name="Belcher", contacts=("Bob Belcher",), pets=("Rex",))
    db.commit()
    assert [m.family_id for m in search_families(db, business, "SOFIA")] == [garcia.id]
    assert [m.family_id for m in search_families(db, business, "garc")] == [garcia.id]
    found = search_families(db, business, "bel")
    assert {m.family_name for m in found} == {"Johnson", "Belcher"}
    assert [m.family_id for m in search_families(db, business, "bella")][0] == bella.id
    assert search_families(db, business, "emma joh")[0].family_id == bella.id
    assert search_families(db, business, "emma rex") == []
    assert search_families(db, business, "  ") == []


def test_search_ranks_exact_words_first(db: Session) -> None:
    business = make_business(db)
    maxwell = make_family(db, business, name="Maxwell", contacts=("Ann Maxwell",), pets=("Rex",))
    max_family = make_family(db, business, name="Stone", contacts=("Tom Stone",), pets=("Max",))
    db.commit()
    assert [m.family_id for m in search_families(db, business, "max")] == [max_family.id, maxwell.id]


def test_search_never_crosses_businesses(db: Session) -> None:
    mine, theirs = make_business(db), make_business(db)
    make_family(db, theirs, contacts=("Bella Ortiz",), pets=("Bella",))
    db.commit()
    assert search_families(db, mine, "bella") == []


def test_search_treats_like_wildcards_literally(db: Session) -> None:
    business = make_business(db)
    make_family(db, business, contacts=("Ann Lee",), pets=("Rex",))
    db.commit()
    assert search_families(db, business, "%") == []
    assert normalise_words("Zoë O'Brien_x") == ["zoe", "o", "brien", "x"]


def test_reply_tokens_are_long_random_and_lowercase() -> None:
    tokens = {new_reply_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert token == token.lower() and token.isalnum() and len(token) * 5 >= 80


def test_reply_address_round_trip_ignores_case() -> None:
    address = make_reply_address("abc123", "reply.example.com")
    assert address == "reply+abc123@reply.example.com"
    assert parse_reply_address("Reply+ABC123@Reply.Example.COM", "reply.example.com") == "abc123"
    assert parse_reply_address("<reply+abc123@reply.example.com>", "reply.example.com") == "abc123"
    assert parse_reply_address("reply+abc123@elsewhere.com", "reply.example.com") is None
    assert parse_reply_address("reply@reply.example.com", "reply.example.com") is None
    assert parse_reply_address("reply+a.b@reply.example.com", "reply.example.com") is None


def test_rotating_a_token_retires_the_old_one(db: Session) -> None:
    business = make_business(db)
    thread = thread_of(db, make_family(db, business))
    old = thread.reply_token
    new = rotate_reply_token(db, thread)
    db.commit()
    assert new != old
    assert thread_for_token(db, old) is None
    assert thread_for_token(db, new.upper()) is thread


def test_search_results_name_the_parents_primary_first_the_pets_and_the_thread(db: Session) -> None:
    business = make_business(db)
    family = make_family(db, business, name="Okafor", contacts=("Chioma Okafor", "Emeka Okafor"), pets=("Teddy", "Belle"))
    db.commit()
    (match,) = search_families(db, business, "teddy")
    assert match.contact_names == ("Chioma Okafor", "Emeka Okafor")
    assert match.pet_names == ("Teddy", "Belle")
    assert match.thread_id == thread_of(db, family).id
