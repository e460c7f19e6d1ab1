"""What lands in the thread from a reply: never its quoted history (issue 11, points 1 and 6)."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

from sqlalchemy import Engine

from tests.inbound_server import queries
from tests.inbound_server.conftest import World
from tests.inbound_server.mail import reply_email, send

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
