"""Email HTML made safe to show, whatever its shape (issue 11, point 12)."""

from portal.sanitize import clean_email_html


def test_fifty_thousand_nested_divs_are_shown_bounded() -> None:
    """ammonia took 7.6 s on this; lxml stops at 256 levels before nh3 sees it."""
    cleaned = str(clean_email_html("<p>Bella is fine.</p>" + "<div>" * 50_000 + "x" + "</div>" * 50_000))
    assert cleaned.startswith("<p>Bella is fine.</p>")
    assert cleaned.count("<div>") <= 256


def test_sanitising_still_drops_anything_active() -> None:
    cleaned = str(clean_email_html('<p onclick="x()">Hi<script>alert(1)</script><a href="javascript:x">l</a></p>'))
    assert cleaned == '<p>Hi<a rel="noopener noreferrer nofollow">l</a></p>'


def test_the_quarantine_page_lists_a_deeply_nested_email(app, client, world, db) -> None:  # type: ignore[no-untyped-def]
    """50,000 nested divs from a stranger made /quarantine answer 500 for the whole business."""
    from tests.portal.conftest import sign_in_as
    from threads.models import InboundEmail, Thread

    thread = db.get(Thread, world.thread.id)
    raw = (
        f"From: Stranger <deep@else.test>\r\nTo: reply+{thread.reply_token}@reply.test\r\nSubject: Deep\r\n"
        "Message-ID: <deep@else.test>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<p>Is Bella OK?</p>" + "<div>" * 50_000 + "x" + "</div>" * 50_000
    ).encode()
    db.add(
        InboundEmail(
            business_id=thread.business_id, thread_id=thread.id, envelope_from="deep@else.test",
            envelope_to=f"reply+{thread.reply_token}@reply.test", sender="deep@else.test", subject="Deep",
            message_id_header="deep@else.test", size=len(raw), raw=raw, outcome="quarantined",
            reason="sender is not a contact of this family",
        )
    )
    db.commit()
    sign_in_as(app, client, world.senior)
    response = client.get("/quarantine")
    assert response.status_code == 200
    assert "Is Bella OK?" in response.get_data(as_text=True)
