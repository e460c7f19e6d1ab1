"""Mutated, truncated and garbled MIME: parse, classify and extract never raise, and quotes never leak."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbound.classify import classify
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
# Which bodies each unmutated email has (text, HTML): a mutation that loses one merged or
# dropped a MIME part, and the other body may then hold its raw source.
PARTS = {name: (parse_email(raw).text is not None, parse_email(raw).html is not None) for name, raw in SOURCES.items()}


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
    parts_survived = (parsed.text is not None, parsed.html is not None) == PARTS[name]
    structure_survived = parsed.sender_address and parts_survived and "Content-Type:" not in body and "\n--" not in body[-200:]
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


ALL_SOURCES = {path.name: path.read_bytes() for path in sorted(EML.glob("*.eml"))}
# What 8-bit relays, broken clients and attackers put where ASCII belongs.
HOSTILE_BYTES = [
    b"\xe9", b"\xff\xfe", b"\x80\x00", b"\xc3", b"=?utf-7?q?+2AA-?=", b"=?unicode-escape?q?\\ud800?=",
    b"; charset=utf-7", b"; charset=unicode-escape", b"; charset=\"\xe9\"", b"; name*=utf-8''%ff%fe",
    b"; filename*0*=\xe9; filename*1=\xa0", b"\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n",
    b"\r\nContent-Type: message/rfc822\r\n\r\n", b"<div>" * 40, b"<blockquote type=cite>", b"\x1b$B",
]


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """A golden email with hostile bytes spliced in at line ends, anywhere in it."""
    data = bytearray(ALL_SOURCES[draw(st.sampled_from(sorted(ALL_SOURCES)))])
    for _ in range(draw(st.integers(1, 8))):
        line_ends = [i for i in range(len(data)) if data[i : i + 1] == b"\n"] or [len(data)]
        at = draw(st.sampled_from(line_ends[:400])) if draw(st.booleans()) else draw(st.integers(0, len(data)))
        data[at:at] = draw(st.sampled_from(HOSTILE_BYTES))
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile())
def test_parse_classify_and_extract_never_raise(raw: bytes) -> None:
    """10 of 4,796 fuzzed emails once ended `failed` with UnicodeEncodeError (issue 11, point 15)."""
    try:
        parsed = parse_email(raw)
    except UnparseableEmail:
        return
    classify(parsed, reply_domain="reply.test")
    reply = extract_reply(parsed.text, parsed.html, sender=parsed.sender_name or parsed.sender_address)
    texts = [reply.visible, reply.trimmed, parsed.subject, parsed.sender_name, parsed.text or "", parsed.html or ""]
    texts += [a.filename for a in parsed.attachments] + [v for values in parsed.headers.values() for v in values]
    for text in texts:
        text.encode("utf-8")  # valid Unicode: no lone surrogate reaches a column or a template
