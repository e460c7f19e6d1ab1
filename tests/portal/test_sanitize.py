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
