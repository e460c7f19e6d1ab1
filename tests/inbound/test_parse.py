"""parse_email on golden client mails and on awkward bytes."""

from pathlib import Path

import pytest

from inbound.parse import ParsedEmail, UnparseableEmail, parse_email

EML = Path(__file__).resolve().parent.parent / "data" / "eml"


def load(name: str) -> ParsedEmail:
    return parse_email((EML / name).read_bytes())


def test_gmail_headers() -> None:
    parsed = load("gmail_web.eml")
    assert parsed.sender_address == "emma.clarke@gmail.com"
    assert parsed.sender_name == "Emma Clarke"
    assert parsed.recipients == ("reply+k7m2q9x4w8z1c5v3@reply.pawpost.test",)
    assert parsed.message_id == "CAHk3mZ0vW1rT8x=Qp4dE2Lq7uYbN5sK9aJfR3tGm@mail.gmail.com"
    assert parsed.in_reply_to == "msg-41.9c2e@pawpost.test"
    assert parsed.references == ("thread-root.7f3a@pawpost.test", "msg-41.9c2e@pawpost.test")
    assert parsed.subject == "Re: Bella's walk today"
    assert parsed.text is not None and parsed.text.startswith("Hi Sarah,\n")
    assert parsed.html is not None and 'class="gmail_quote"' in parsed.html
    assert parsed.attachments == ()
    assert parsed.header("MIME-Version") == "1.0"
    assert not parsed.is_report


def test_in_reply_to_without_references() -> None:
    raw = b"From: a@b.example\r\nIn-Reply-To: <x1@pawpost.test>\r\nSubject: s\r\n\r\nhi\r\n"
    parsed = parse_email(raw)
    assert parsed.in_reply_to == "x1@pawpost.test"
    assert parsed.references == ()


def test_missing_message_id_is_none() -> None:
    assert parse_email(b"From: a@b.example\n\nhi\n").message_id is None


def test_attachments_keep_photos_and_drop_winmail() -> None:
    parsed = load("outlook_desktop.eml")
    assert [(a.filename, a.content_type, a.size, a.inline) for a in parsed.attachments] == [
        ("rex-vet-card.jpg", "image/jpeg", 790, False)
    ]
    assert parsed.attachments[0].content.startswith(b"\xff\xd8\xff")
    assert parsed.recipients == ("reply+k7m2q9x4w8z1c5v3@reply.pawpost.test", "maria.reyes@example.net")


def test_inline_image_keeps_its_content_id() -> None:
    (photo,) = load("apple_mail.eml").attachments
    assert (photo.filename, photo.content_type, photo.inline) == ("photo.png", "image/png", True)
    assert photo.content_id == "9F3D2C1B-0A9E-4D8C-B7A6-5E4D3C2B1A0F"
    assert photo.content.startswith(b"\x89PNG")


def test_signature_parts_are_not_attachments() -> None:
    raw = (
        b'From: a@b.example\nMIME-Version: 1.0\nContent-Type: multipart/signed; boundary="b"; '
        b'protocol="application/pkcs7-signature"\n\n--b\nContent-Type: text/plain\n\nsigned hi\n'
        b"--b\nContent-Type: application/pkcs7-signature; name=smime.p7s\n"
        b"Content-Disposition: attachment; filename=smime.p7s\nContent-Transfer-Encoding: base64\n\nAAAA\n"
        b"--b\nContent-Type: application/pgp-signature; name=signature.asc\n\nsig\n--b--\n"
    )
    parsed = parse_email(raw)
    assert parsed.attachments == ()
    assert parsed.text is not None and parsed.text.strip() == "signed hi"


@pytest.mark.parametrize(
    ("charset", "body", "expected"),
    [
        ("iso-8859-1", "Caf\xe9 \xe0 18 h".encode("latin-1"), "Café à 18 h"),
        ("windows-1252", b"vet\x92s \x80 5", "vet\u2019s € 5"),
        ("big5", "狗狗很好".encode("big5"), "狗狗很好"),
        ("utf-8", b"ok \xff\xfe bad", "ok \ufffd\ufffd bad"),
        ("x-no-such-charset", b"plain words", "plain words"),
    ],
)
def test_charsets_decode(charset: str, body: bytes, expected: str) -> None:
    raw = (
        b"From: a@b.example\nMIME-Version: 1.0\nContent-Type: text/plain; charset="
        + charset.encode()
        + b"\nContent-Transfer-Encoding: 8bit\n\n"
        + body
        + b"\n"
    )
    parsed = parse_email(raw)
    assert parsed.text is not None and parsed.text.strip() == expected


def test_encoded_headers_decode() -> None:
    parsed = load("french.eml")
    assert parsed.sender_name == "Amélie Laurent"
    assert parsed.subject == "Re: Récupération de Caramel"


def test_delivery_report_details() -> None:
    parsed = load("bounce_dsn.eml")
    assert parsed.is_report and parsed.report_type == "delivery-status"
    assert parsed.delivery_status is not None and "Status: 5.1.1" in parsed.delivery_status
    assert parsed.reported_message_id == "msg-150.0b0b@pawpost.test"
    assert parsed.attachments == ()


@pytest.mark.parametrize("raw", [b"", b"   \r\n\r\n  "])
def test_nothing_at_all_is_unparseable(raw: bytes) -> None:
    with pytest.raises(UnparseableEmail):
        parse_email(raw)


def test_broken_mime_still_parses() -> None:
    raw = (
        b'From: a@b.example\nContent-Type: multipart/mixed; boundary="never-closed"\n\n'
        b"--never-closed\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        b"SGVsbG8gdGhlcmU=!!!\n"
    )
    parsed = parse_email(raw)
    assert parsed.sender_address == "a@b.example"


def test_nul_in_an_encoded_word_charset_does_not_crash() -> None:
    parsed = parse_email(b"From:\x00=?\x00iso-8859-1?Q?Am=E9lie?= <a@b.example>\n\nhi\n")
    assert parsed.text is not None and parsed.text.strip() == "hi"
