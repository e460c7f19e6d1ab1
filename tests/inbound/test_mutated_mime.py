"""Mutated, truncated and garbled MIME: parse_email never crashes and quotes never leak."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbound.parse import UnparseableEmail, parse_email
from inbound.reply_text import extract_reply

EML = Path(__file__).resolve().parent.parent / "data" / "eml"
# Top-posted golden mails and a phrase that only their quoted history holds.
QUOTED = {
    "gmail_web.eml": "met a new friend",
    "outlook_desktop.eml": "schedule for next week",
    "outlook_web.eml": "grooming slot for Luna",
    "ios_mail.eml": "extra walk for Cooper",
    "yahoo.eml": "Which dates would you like",
    "french.eml": "vous pouvez venir",
    "german.eml": "wir holen Bruno",
}
SOURCES = {name: (EML / name).read_bytes() for name in QUOTED}


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SOURCES)))
    data = bytearray(SOURCES[name])
    for _ in range(draw(st.integers(0, 6))):
        action = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif action == "insert":
            data[at:at] = draw(st.sampled_from([b"\r\n", b"--", b"=", b"\x00", b"\xff\xfe", b"boundary=", b"\n\n"]))
        else:
            del data[at:]
    return name, bytes(data)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_never_crash_or_leak_quotes(case: tuple[str, bytes]) -> None:
    name, raw = case
    try:
        parsed = parse_email(raw)
    except UnparseableEmail:
        return
    reply = extract_reply(parsed.text, parsed.html)
    assert isinstance(reply.visible, str)
    body = (parsed.text or "") + (parsed.html or "")
    # When a mutation destroys the header block or a boundary, raw MIME becomes the
    # body and there is no quote structure left to find; otherwise nothing may leak.
    structure_survived = parsed.sender_address and "Content-Type:" not in body and "\n--" not in body[-200:]
    if structure_survived and QUOTED[name] in body and reply.trimmed:
        assert QUOTED[name] not in reply.visible


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_only_raise_unparseable(raw: bytes) -> None:
    try:
        parsed = parse_email(raw)
    except UnparseableEmail:
        return
    extract_reply(parsed.text, parsed.html)
