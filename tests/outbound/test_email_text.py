"""Issue 14, point 4: what the emails say — who wrote, photo links in plain text, the alert's
author once and its current or next appointment, no <title> line, "a contact of the Johnson
family", and the text and HTML parts saying the same sentences."""

from __future__ import annotations

import re
from datetime import timedelta

from lxml import html as lxml_html
from sqlalchemy.orm import Session

from outbound import tasks
from tests.factories import make_appointment
from tests.outbound.world import T0, World, build_world, post
from threads.models import Family, Staff, Thread
from threads.posting import NewAttachment, post_message

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)


def _parts(item) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    text = item.message.get_body(("plain",)).get_content()
    html = item.message.get_body(("html",)).get_content()
    return text, html


def _sentences(text: str) -> set[str]:
    """Every line of words, URLs and the reply quote left out, whitespace folded."""
    lines = {" ".join(line.split()) for line in text.splitlines()}
    return {line for line in lines if line and line != "--" and "http" not in line}


def _html_text(html: str) -> str:
    root = lxml_html.fromstring(html)
    for br in root.iter("br"):
        br.tail = "\n" + (br.tail or "")
    blocks = root.xpath("//p|//div[not(.//p) and not(.//div)]|//tr")
    return "\n".join(
        " ".join((" ".join(block.itertext()) if block.tag == "tr" else block.text_content()).split()) for block in blocks
    )


def _by_recipient(handler, address: str):  # type: ignore[no-untyped-def]
    return [item for item in handler.received if address in item.rcpt_tos]


def test_a_co_parents_message_says_who_wrote_it(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    post(sessions, world, ("contact", world.secondary_id), "Bella's lead is by the door", T0)
    tasks.run_digests([world.thread_id], now=T0 + timedelta(minutes=5))
    [item] = _by_recipient(handler, world.primary_email)
    text, html = _parts(item)
    assert "Liam Johnson wrote to Happy Tails:" in text and "Liam Johnson wrote to Happy Tails:" in html
    assert "new message from Happy Tails" not in text
    assert str(item.message["From"]).startswith("Liam Johnson via Happy Tails")
    assert "You get this email as a contact of the Johnson family." in text
    assert "contact for" not in text and "contact for" not in html


def test_text_and_html_say_the_same_sentences_and_text_links_staff_photos(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)
    with sessions() as session, session.begin():
        thread, walker = session.get(Thread, world.thread_id), session.get(Staff, world.walker_id)
        assert thread is not None and walker is not None
        post_message(session, thread, walker, "Bella at the park\n\nShe loved it", [NewAttachment("bella.png", "image/png", PNG)], now=T0)
    tasks.run_digests([world.thread_id], now=T0 + timedelta(minutes=5))
    [item] = _by_recipient(handler, world.primary_email)
    text, html = _parts(item)
    assert re.search(r"\[photo: bella\.png\] https://portal\.test/attachments/\d+/\S+", text), text
    assert not text.lstrip().startswith("Happy Tails\n") and "<title>" not in html
    missing = _sentences(text) - _sentences(_html_text(html)) - {"[photo: bella.png]"}
    assert {line for line in missing if not line.startswith("[photo:")} == set(), missing


def test_the_staff_alert_names_the_author_once_and_shows_the_current_or_next_visit(settings, sessions, sink) -> None:
    handler, _ = sink
    world = build_world(sessions)  # the walker's walk: T0 - 1 h to T0 + 1 h
    with Session(sessions.kw["bind"]) as session, session.begin():
        family, walker = session.get(Family, world.family_id), session.get(Staff, world.walker_id)
        assert family is not None and walker is not None
        make_appointment(session, family, [walker], start=T0 + timedelta(hours=3), hours=1, service="drop-in")
    late = post(sessions, world, ("contact", world.primary_id), "Is Bella back?", T0 + timedelta(hours=2))
    tasks.run_posted_message(late, now=T0 + timedelta(hours=2))
    [alert] = _by_recipient(handler, world.walker_email)
    text, html = _parts(alert)
    assert text.count("Emma Johnson") == 1, text
    assert "Next: drop-in" in text and "walk" not in text  # the finished walk is not shown
    assert "Next: drop-in" in html
    missing = _sentences(text) - _sentences(_html_text(html))
    assert missing == set(), missing
