"""The header-only read the server does before `250` agrees with the worker's full parse."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inbound.parse import HeaderSummary, UnparseableEmail, _parse_headers_slowly, parse_email, parse_headers
from tests.inbound_server.test_properties import PROPERTIES, damaged, replies

SENDER, TO = "emma.johnson.1@parents.test", "reply+abc@reply.test"


def _slow(raw: bytes) -> HeaderSummary:
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    return _parse_headers_slowly(raw[:end] + b"\n")


@PROPERTIES
@given(email=replies(SENDER, TO), threading_headers=st.sampled_from(["", "In-Reply-To: <a@x>\r\nReferences: <r@x>\r\n <a@x>\r\n"]))
def test_ids_read_before_250_are_the_ids_the_worker_parses(email: tuple[bytes, str], threading_headers: str) -> None:
    raw = threading_headers.encode() + email[0]
    quick, parsed = parse_headers(raw), parse_email(raw)

    assert (quick.message_id, quick.in_reply_to, quick.references) == (parsed.message_id, parsed.in_reply_to, parsed.references)
    assert quick.message_id == email[1]
    assert quick.content_type == parsed.content_type


@PROPERTIES
@given(raw=damaged(SENDER, TO))
def test_damaged_headers_read_fast_as_the_stdlib_reads_them(raw: bytes) -> None:
    assert parse_headers(raw) == _slow(raw)
    try:
        parsed = parse_email(raw)
    except UnparseableEmail:
        return
    quick = parse_headers(raw)
    assert (quick.message_id, quick.in_reply_to, quick.references) == (parsed.message_id, parsed.in_reply_to, parsed.references)


def test_an_mbox_from_line_and_folded_ids_still_read() -> None:
    raw = b"From someone Mon Jun  3 09:12:00 2024\nMessage-ID:\n <folded@x.test>\nSubject: hi\n\nbody\n"
    assert parse_headers(raw).message_id == parse_email(raw).message_id == "folded@x.test"
