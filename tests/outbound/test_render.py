"""Rendering is pure: data in, an email out. What a mail client and a phone will see."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

from outbound import ids
from outbound.render import (
    DigestContent,
    Envelope,
    FileLink,
    InlineImage,
    ShownMessage,
    render_digest,
    to_bytes,
    thread_subject,
)

NOW = datetime(2026, 6, 2, 15, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def envelope(**changes: str) -> Envelope:
    values = dict(
        from_name="Zoë Müller at Happy Tails",
        from_address="notifications@reply.test",
        to_name="Emma Johnson",
        to_address="emma@parents.test",
        reply_to="reply+abc123@reply.test",
        message_id="pawpost.42.0011223344556677@reply.test",
        root_message_id="thread.feedbeef@reply.test",
        subject=thread_subject("Happy Tails", "Johnson family", "Bella and Max"),
        thread_index=ids.thread_index("thread.feedbeef@reply.test", NOW, NOW),
        date=NOW,
    )
    values.update(changes)
    return Envelope(**values)  # type: ignore[arg-type]


def digest(*messages: ShownMessage) -> DigestContent:
    return DigestContent(business_name="Happy Tails", family_name="Johnson family", recipient_name="Emma", messages=messages)


def parse(raw: bytes):  # type: ignore[no-untyped-def]
    return message_from_bytes(raw, policy=policy.default)


def test_headers_thread_the_email_and_stop_auto_replies() -> None:
    raw = to_bytes(render_digest(envelope(), digest(ShownMessage("Priya", "Tue 2 Jun, 11:00 AM", "Walk done"))))
    email = parse(raw)
    assert email["From"].addresses[0].addr_spec == "notifications@reply.test"
    assert email["From"].addresses[0].display_name == "Zoë Müller at Happy Tails"
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0]  # the name is RFC 2047-encoded on the wire
    assert email["Reply-To"] == "reply+abc123@reply.test"
    assert email["Message-ID"] == "<pawpost.42.0011223344556677@reply.test>"
    assert ids.outbox_id_from_message_id(email["Message-ID"], "reply.test") == 42
    assert email["In-Reply-To"] == email["References"] == "<thread.feedbeef@reply.test>"
    assert email["Subject"] == email["Thread-Topic"] == "Happy Tails: Johnson family (Bella and Max)"
    assert email["Auto-Submitted"] == "auto-generated"
    assert email["X-Auto-Response-Suppress"] == "All"
    assert email.get_content_type() == "multipart/alternative"
    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
    assert text.startswith("Reply to this email and your answer goes to the whole Happy Tails team.")
    assert "goes to the whole Happy Tails team" in html and 'name="viewport"' in html
    assert "Priya" in text and "Tue 2 Jun, 11:00 AM" in text


def test_every_email_of_a_thread_shares_outlooks_thread_index_header() -> None:
    later = datetime(2026, 6, 3, 9, 0, tzinfo=UTC)
    first = ids.thread_index("thread.feedbeef@reply.test", NOW, NOW)
    second = ids.thread_index("thread.feedbeef@reply.test", NOW, later)
    import base64

    a, b = base64.b64decode(first), base64.b64decode(second)
    assert len(a) == len(b) == 27 and a[:22] == b[:22] and a[22:26] != b[22:26]


def test_no_header_can_be_injected_through_a_name_or_a_subject() -> None:
    evil = "Eve\r\nBcc: victim@example.com\r\nX-Evil: 1"
    raw = to_bytes(render_digest(
        envelope(from_name=evil + " at Happy Tails", to_name=evil, subject="Hi\nBcc: victim@example.com"),
        digest(ShownMessage("Eve\nBcc: x@example.com", "now", "body")),
    ))
    head = raw.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n") if line and not line[:1].isspace()]
    assert b"bcc" not in names and b"x-evil" not in names
    assert parse(raw)["Bcc"] is None


def test_html_is_escaped_and_line_breaks_kept() -> None:
    message = ShownMessage("<script>alert(1)</script>", "now", "Hello <b>there</b>\nsecond line\n\nnew paragraph")
    html = parse(to_bytes(render_digest(envelope(), digest(message)))).get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Hello &lt;b&gt;there&lt;/b&gt;<br>second line" in html
    assert html.count("<p style=\"margin:0 0 10px 0") == 2


def test_staff_images_are_attached_inline_and_other_files_linked() -> None:
    image = InlineImage("bella.png", "image/png", PNG, "att1.abc@reply.test")
    link = FileLink("vaccination.pdf", 3_000_000, "https://portal.test/attachments/2/tok")
    email = parse(to_bytes(render_digest(envelope(), digest(ShownMessage("Priya", "now", "Look!", (image,), (link,))))))
    parts = {part.get_content_type(): part for part in email.walk()}
    assert parts["image/png"].get_content() == PNG
    assert parts["image/png"]["Content-ID"] == "<att1.abc@reply.test>"
    html = email.get_body(("html",)).get_content()
    assert 'src="cid:att1.abc@reply.test"' in html and "https://portal.test/attachments/2/tok" in html
    assert "https://portal.test/attachments/2/tok" in email.get_body(("plain",)).get_content()
