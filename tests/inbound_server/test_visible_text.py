"""What lands in the thread from a reply: never its quoted history (issue 11, points 1 and 6)."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pawpost.settings import Settings
from portal import create_app
from tests.inbound_server import queries
from tests.inbound_server.conftest import World
from tests.inbound_server.mail import reply_email, send
from tests.portal.conftest import sign_in_as
from threads.models import Staff

DIGEST_QUOTE = "Sarah wrote: Bella had a great walk today!"


def test_an_empty_reply_is_rejected_and_posts_nothing(smtp, world: World, engine: Engine) -> None:
    raw = reply_email(world.primary_email, world.reply_to, "", quote=DIGEST_QUOTE, message_id="<empty-1@parents.test>")
    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250

    assert queries.messages(engine, world.thread_id) == []
    [row] = [r for r in queries.inbound(engine) if r.message_id_header == "empty-1@parents.test"]
    assert (row.outcome, row.reason) == ("rejected", "empty reply")


def test_a_photo_only_reply_posts_the_photo_and_no_quote(smtp, world: World, engine: Engine) -> None:
    message = EmailMessage()
    message["From"] = world.primary_email
    message["To"] = world.reply_to
    message["Subject"] = "Re: New messages about Bella"
    message["Message-ID"] = "<photo-only-1@parents.test>"
    message.set_content("\n\nOn Mon, 3 Jun 2024 at 09:12, Happy Tails <notifications@reply.test> wrote:\n> " + DIGEST_QUOTE + "\n")
    message.add_attachment(b"\xff\xd8\xff\xe0 bella", maintype="image", subtype="jpeg", filename="bella.jpg")
    assert send(*smtp, world.primary_email, world.reply_to, message.as_bytes(policy=SMTP))[0] == 250

    [posted] = queries.messages(engine, world.thread_id)
    assert posted.body == ""
    assert [a.filename for a in posted.attachments] == ["bella.jpg"]


def _thread_page(settings: Settings, engine: Engine, world: World) -> str:
    """The thread page as the senior staff member sees it in the portal."""
    app = create_app(Settings.from_env({**_env(settings), "PAWPOST_SECRET_KEY": "visible-text-tests-secret-0123456789"}))
    try:
        client = app.test_client()
        with Session(engine) as session:
            senior = session.get(Staff, world.senior_id)
            assert senior is not None
            session.expunge(senior)
        # Signed in after the read ends: on SQLite an open transaction holds the write lock.
        sign_in_as(app, client, senior)
        return client.get(f"/threads/{world.thread_id}").get_data(as_text=True)
    finally:
        app.extensions["pawpost"].engine.dispose()


def _env(settings: Settings) -> dict[str, str]:
    return {
        "PAWPOST_DATA_DIR": str(settings.data_dir),
        "PAWPOST_DATABASE_URL": settings.database_url,
        "PAWPOST_QUEUE_URL": "memory://",
        "PAWPOST_REPLY_DOMAIN": settings.reply_domain,
    }


def test_the_portal_shows_the_original_formatting_of_an_html_reply(
    smtp, settings: Settings, world: World, engine: Engine
) -> None:
    """Issue 11, point 6: the email's HTML is stored with the message, sanitised when shown."""
    message = EmailMessage()
    message["From"] = world.primary_email
    message["To"] = world.reply_to
    message["Subject"] = "Re: Bella"
    message["Message-ID"] = "<html-1@parents.test>"
    message.set_content("Her new food is in the blue bag.")
    message.add_alternative(
        "<div>Her new food is in the <b style='color:blue'>blue bag</b>.<script>alert(1)</script></div>"
        "<div class='gmail_quote'>On Mon wrote:<blockquote>Bella had a great walk</blockquote></div>",
        subtype="html",
    )
    assert send(*smtp, world.primary_email, world.reply_to, message.as_bytes(policy=SMTP))[0] == 250
    [posted] = queries.messages(engine, world.thread_id)
    assert posted.body == "Her new food is in the blue bag."
    assert posted.html is not None and "<b" in posted.html

    page = _thread_page(settings, engine, world)
    assert "Show original formatting" in page
    original = page[page.index('class="email-html"') :]
    original = original[: original.index("</details>")]
    assert "<b>blue bag</b>" in original and "Bella had a great walk" in original
    assert "script" not in original and "style=" not in original


def test_deeply_nested_html_is_stored_bounded_and_shown(smtp, settings: Settings, world: World, engine: Engine) -> None:
    """50,000 nested divs from a stranger made the page answer 500 (RecursionError)."""
    raw = (
        f"From: {world.primary_email}\r\nTo: {world.reply_to}\r\nSubject: Re: Bella\r\n"
        "Message-ID: <deep-1@parents.test>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<p>Bella is fine.</p>\r\n" + "<div>\r\n" * 50_000 + "x" + "</div>\r\n" * 50_000
    ).encode()
    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250
    [posted] = queries.messages(engine, world.thread_id)
    assert posted.body.startswith("Bella is fine.")
    assert posted.html is not None and posted.html.count("<div") <= 256

    page = _thread_page(settings, engine, world)
    assert "Bella is fine." in page and "Show original formatting" in page


def test_a_huge_reply_posts_capped_text_and_keeps_the_whole_email(smtp, world: World, engine: Engine) -> None:
    """Issue 11, point 13: 24 MB of text was posted whole; now 64 KiB and a note, raw kept."""
    from inbound.reply_text import TRUNCATION_NOTE, VISIBLE_CHARS

    line = "Bella loved the walk and the park and the other dogs today, thank you!\r\n"
    raw = (
        f"From: {world.primary_email}\r\nTo: {world.reply_to}\r\nSubject: Re: Bella\r\n"
        "Message-ID: <huge-1@parents.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + line * 5_000
    ).encode()
    assert send(*smtp, world.primary_email, world.reply_to, raw)[0] == 250
    [posted] = queries.messages(engine, world.thread_id)
    assert len(posted.body) <= VISIBLE_CHARS + len(TRUNCATION_NOTE) + 2
    assert posted.body.endswith(TRUNCATION_NOTE)
    [row] = [r for r in queries.inbound(engine) if r.message_id_header == "huge-1@parents.test"]
    assert row.size == len(raw) and bytes(row.raw) == raw
