"""parse_email on golden client mails and on awkward bytes."""

from pathlib import Path

import pytest

from inbound.parse import ParsedEmail, UnparseableEmail, parse_email
from inbound.reply_text import extract_reply

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


# --- issue 11, point 3: broken and unusual MIME ---


def test_a_multipart_without_boundary_lines_keeps_its_text() -> None:
    raw = (
        b"From: Emma <emma@example.com>\r\nSubject: Re: Bella\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="never-used"\r\n\r\n'
        b"Bella can stay until Sunday.\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.text is not None and parsed.text.strip() == "Bella can stay until Sunday."
    assert parsed.attachments == ()


def test_every_inline_part_of_a_mixed_email_is_read_in_order() -> None:
    raw = (
        b"From: Emma <emma@example.com>\r\nSubject: Re: Bella\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nFirst, her lead is in the car.\r\n"
        b'--b\r\nContent-Type: image/jpeg; name="lead.jpg"\r\nContent-Disposition: inline; filename="lead.jpg"\r\n\r\n\xff\xd8jpeg\r\n'
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Second, she had <b>breakfast</b>.</p>\r\n"
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThird, back at six.\r\n"
        b"--b--\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.text is not None and parsed.html is not None
    from inbound.reply_text import extract_reply

    visible = extract_reply(parsed.text, parsed.html).visible
    assert visible == "First, her lead is in the car.\n\nSecond, she had breakfast.\n\nThird, back at six."
    for body in (parsed.text, parsed.html):
        assert body.index("First") < body.index("Second") < body.index("Third")
    assert [a.filename for a in parsed.attachments] == ["lead.jpg"]


@pytest.mark.parametrize(
    ("declared", "text", "encoding"),
    [
        (b"", "明日の散歩は九時でお願いします。ベラは元気です。", "iso-2022-jp"),
        (b"; charset=", "明日の散歩は九時でお願いします。ベラは元気です。", "iso-2022-jp"),
        (b"; charset=us-ascii", "明日の散歩は九時でお願いします。ベラは元気です。", "iso-2022-jp"),
        (
            b"",
            "Привет! Белла здорова, завтра прогулка в девять часов утра.\n"
            "Спасибо за фотографии, она очень довольна. До встречи в пятницу!",
            "koi8-r",
        ),
        (b"", "Grüße aus München! Bruno braucht seinen Maulkorb nicht mehr, danke schön.", "cp1252"),
    ],
)
def test_an_unlabelled_charset_is_detected(declared: bytes, text: str, encoding: str) -> None:
    raw = b"From: a@b.example\r\nContent-Type: text/plain" + declared + b"\r\n\r\n" + text.encode(encoding) + b"\r\n"
    assert parse_email(raw).text.strip() == text


def test_a_forwarded_email_is_one_whole_attachment() -> None:
    inner = (
        b"From: Oak Street Vets <records@vets.example>\r\nSubject: Vaccination record\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="in"\r\n\r\n'
        b"--in\r\nContent-Type: text/plain\r\n\r\nBiscuit had his rabies booster.\r\n\r\n-- \r\nOak Street Vets\r\n"
        b'--in\r\nContent-Type: application/pdf; name="record.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n'
        b"--in--\r\n"
    )
    raw = (
        b"From: Emma <emma@example.com>\r\nSubject: Fwd: Vaccination record\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="out"\r\n\r\n'
        b"--out\r\nContent-Type: text/plain\r\n\r\nHere is the record you asked for.\r\n"
        b"--out\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + inner + b"\r\n--out--\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.text.strip() == "Here is the record you asked for."
    [forwarded] = parsed.attachments
    assert forwarded.content_type == "message/rfc822"
    assert forwarded.filename == "Vaccination record.eml"
    assert forwarded.size == len(forwarded.content) > 300
    again = parse_email(forwarded.content)  # the attached email is whole, its PDF inside it
    assert again.text.startswith("Biscuit had his rabies booster.")
    assert [(a.filename, a.content) for a in again.attachments] == [("record.pdf", b"%PDF-1.4")]


# --- issue 11, points 11, 12 and 15: hostile bytes ---


@pytest.mark.parametrize(
    "raw",
    [
        # 8-bit bytes in a filename, a charset and an RFC 2231 parameter; a NUL in a charset
        b'From: a@b.example\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain; charset="\xe9\x00"\n\n'
        b'hi\n--b\nContent-Type: application/pdf; name="\xff\xfe.pdf"\nContent-Disposition: attachment; filename*0*=\xe9; '
        b'filename*1=\xa0\nContent-Id: <\xe9>\n\nx\n--b--\n',
        # codecs that decode to lone surrogates
        b"From: a@b.example\nContent-Type: text/plain; charset=utf-7\n\n+2AA-hi\n",
        b"From: a@b.example\nContent-Type: text/plain; charset=unicode-escape\n\n\\ud800hi\n",
        b"From: =?unicode-escape?q?\\ud800?= <a@b.example>\nSubject: =?utf-7?q?+2AA-?=\n\nhi\n",
        # an 8-bit byte inside an encoded-word's charset, in the From display name
        b"From: =?iso-8\xe9859-1?Q?Am=E9lie_Laurent?= <amelie@orange.example>\n\nMerci !\n",
    ],
)
def test_no_surrogate_ever_leaves_the_parser(raw: bytes) -> None:
    parsed = parse_email(raw)
    values = [parsed.text or "", parsed.html or "", parsed.subject, parsed.sender_name]
    values += [a.filename for a in parsed.attachments] + [a.content_id or "" for a in parsed.attachments]
    for value in values:
        value.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate


def test_deeply_nested_multiparts_and_thousands_of_parts_parse() -> None:
    depth = 3000
    opening = b"".join(b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (i, i + 1) for i in range(depth))
    raw = b'From: a@b.example\r\nContent-Type: multipart/mixed; boundary="b0"\r\n\r\n' + opening + b"--b3000--\r\n"
    assert parse_email(raw).truncated  # no RecursionError; the rest stays in the raw email
    parts = b"".join(b"--p\r\nContent-Type: image/png; name=\"%d.png\"\r\n\r\nx\r\n" % i for i in range(5000))
    many = parse_email(b'From: a@b.example\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n' + parts + b"--p--\r\n")
    assert many.truncated and 0 < len(many.attachments) < 5000


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("=?utf-8?B?VW56dXN0ZWxsYmFyOiBJaHJlIE5hY2hyaWNo", "Unzustellbar: Ihre Nachrich"),  # no `?=`, cut
        ("=?utf-8?B?VW56dXN0ZWxsYmFyOiBJaHJlIE5hY2hyaWNod?=", "Unzustellbar: Ihre Nachrich"),  # a lone sextet
        ("=?iso-8859-1?Q?Unzustellbar=3A_Nachricht_=E4?", "Unzustellbar: Nachricht ä"),  # `?` without `=`
        ("Re: =?utf-8?B?w6lj?= =?utf-8?B?aGVj?=", "Re: échec"),  # adjacent words join
        ("Costs =? about 40 euros", "Costs =? about 40 euros"),  # no encoded-word at all
    ],
)
def test_broken_encoded_words_still_decode(encoded: str, decoded: str) -> None:
    parsed = parse_email(f"From: a@b.test\nSubject: {encoded}\n\nhi\n".encode())
    assert parsed.subject == decoded


@pytest.mark.parametrize(
    ("damage", "into"),
    [
        (b"Content-Type: text/html;", b"\x00ontent-Type: text/html;"),  # first header line garbled
        (b"Content-Type: text/html;", b"Content-Tpe: text/html;"),  # the type lost: text/plain by default
    ],
)
def test_a_damaged_html_alternative_is_never_posted_as_markup(damage: bytes, into: bytes) -> None:
    """iOS Mail's reply with its HTML part's header damaged in transit: the part's other
    headers still hold (quoted-printable), and an HTML document is read as HTML."""
    raw = (EML / "ios_mail.eml").read_bytes()
    parsed = parse_email(raw.replace(damage, into, 1))
    reply = extract_reply(parsed.text, parsed.html)
    assert reply.visible == "Yes please! Cooper will love an extra walk \U0001f436"
