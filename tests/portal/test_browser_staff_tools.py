"""Issue 15's staff tools in Chromium: internal notes, saved replies, message search, mark as unread."""

from __future__ import annotations

import re

import pytest

from tests.portal.test_browser import Live, assert_clean, browser, live, signed_in_page  # noqa: F401 (fixtures)

try:
    from playwright.sync_api import Browser, expect
except ImportError:  # `launched_chromium` reports it
    pass

pytestmark = pytest.mark.browser


def test_an_internal_note_is_drawn_apart_and_the_composer_says_so(browser: Browser, live: Live) -> None:  # noqa: F811
    page = signed_in_page(browser, live, "sam@a.test")
    page.goto(live.url(f"/threads/{live.world.thread.id}"))
    page.get_by_label("Internal note").check()
    expect(page.locator("form.composer")).to_have_class(re.compile("note-mode"))
    expect(page.get_by_text("Staff only: the family never sees it.")).to_be_visible()
    box = page.get_by_label("Message to the Johnson family")
    box.fill("Keep Bella apart from big dogs @Sky")
    box.press("Enter")
    note = page.locator("li.msg-internal").last
    expect(note).to_contain_text("Keep Bella apart from big dogs")
    expect(note.locator(".badge-internal")).to_have_text("Internal note")
    expect(note.locator(".receipts")).to_have_count(0)
    page.get_by_label("Internal note").uncheck()
    expect(page.locator("form.composer")).not_to_have_class(re.compile("note-mode"))
    assert_clean(page)


def test_slash_offers_saved_replies_filled_for_the_family(browser: Browser, live: Live) -> None:  # noqa: F811
    page = signed_in_page(browser, live, "sam@a.test")
    page.goto(live.url("/saved-replies"))
    page.get_by_label("Name").first.fill("Closed tomorrow")
    page.get_by_label("Text").first.fill("Hi {parent_first_name}, we are closed tomorrow: no walk for {pet_names}. {staff_first_name}")
    page.get_by_role("button", name="Add saved reply").click()
    expect(page.get_by_text("Saved “Closed tomorrow”.")).to_be_visible()
    page.goto(live.url(f"/threads/{live.world.thread.id}"))
    box = page.get_by_label("Message to the Johnson family")
    box.press_sequentially("/clo")
    option = page.get_by_role("option", name=re.compile("Closed tomorrow"))
    expect(option).to_be_visible()
    expect(option).to_have_attribute("aria-selected", "true")
    box.press("Enter")  # picks: nothing is sent yet
    expect(box).to_have_value("Hi Emma, we are closed tomorrow: no walk for Bella. Sam")
    expect(page.locator("#reply-menu")).to_be_hidden()
    expect(page.locator("li.msg").filter(has_text="we are closed tomorrow")).to_have_count(0)
    box.press("End")
    box.press_sequentially(" See you Friday!")
    box.press("Enter")
    expect(page.locator("li.msg").last).to_contain_text("no walk for Bella. Sam See you Friday!")
    assert_clean(page)


def test_search_highlights_and_opens_the_thread_at_the_message(browser: Browser, live: Live) -> None:  # noqa: F811
    page = signed_in_page(browser, live, "sam@a.test")
    page.get_by_role("link", name="Search").click()
    page.get_by_label("Search message text").fill("limp")
    page.get_by_label("Search message text").press("Enter")
    hit = page.locator(".search-hit").first
    expect(hit).to_contain_text("Garcia family")
    expect(hit.locator("mark")).to_have_text("limps")
    hit.locator("a").click()
    expect(page).to_have_url(re.compile(rf"/threads/{live.world.other_thread.id}\?before=\d+#m\d+$"))
    anchor = page.url.rsplit("#", 1)[1]
    expect(page.locator(f"#{anchor}")).to_be_in_viewport()
    assert_clean(page)


def test_mark_as_unread_brings_the_dot_back_for_me(browser: Browser, live: Live) -> None:  # noqa: F811
    page = signed_in_page(browser, live, "sky@a.test")
    page.goto(live.url(f"/threads/{live.world.other_thread.id}"))
    page.get_by_role("button", name="Mark as unread").click()
    expect(page).to_have_url(live.url("/messages"))
    row = page.locator(".thread-row", has_text="Garcia family")
    expect(row).to_have_class(re.compile("unread"))
    assert_clean(page)


@pytest.mark.parametrize("width", [1200, 390])
def test_screenshots_of_the_new_pages(browser: Browser, live: Live, width: int, tmp_path) -> None:  # noqa: F811, ANN001
    """Not an assertion of looks: the pages load clean at both widths; the images are for a human."""
    page = signed_in_page(browser, live, "sam@a.test", width=width)
    for name, path in (("thread", f"/threads/{live.world.thread.id}"), ("search", "/search?q=bella"), ("replies", "/saved-replies")):
        page.goto(live.url(path))
        if name == "thread":
            page.get_by_label("Internal note").check()
        page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)
    assert_clean(page)


def test_at_390_px_one_menu_button_opens_every_tab(browser: Browser, live: Live, tmp_path) -> None:  # noqa: F811, ANN001
    page = signed_in_page(browser, live, "sam@a.test", width=390)
    menu = page.get_by_role("button", name=re.compile("Menu"))
    expect(menu).to_be_visible()
    expect(menu).to_contain_text("Messages")  # the current page
    assert page.locator("[data-menu-current]").bounding_box()["width"] > 40  # and readable
    expect(menu).to_have_attribute("aria-expanded", "false")
    families = page.get_by_role("link", name="Families")
    expect(families).to_be_hidden()
    expect(page.locator(".whoami .role")).to_be_visible()  # name and role shown
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing off-screen sideways
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    for name in ("Messages", "Today", "Search", "Schedule", "Announce", "Replies", "Families"):
        link = page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile(f"^{name}"))
        expect(link).to_be_in_viewport()
    held = page.locator("#held-count")
    gap = page.evaluate(
        "() => { const c = document.getElementById('held-count'); const r = document.createRange();"
        " r.selectNodeContents(c.parentElement.firstChild); return c.getBoundingClientRect().left - r.getBoundingClientRect().right; }"
    )
    assert held.is_visible() and gap >= 4, gap  # the count does not touch "Quarantine"
    page.screenshot(path=str(tmp_path / "menu-390.png"))
    page.keyboard.press("Escape")
    expect(families).to_be_hidden()
    page.goto(live.url("/today"))
    expect(page.get_by_role("button", name=re.compile("Menu"))).to_contain_text("Today")
    page.screenshot(path=str(tmp_path / "today-390.png"), full_page=True)
    page.goto(live.url("/quarantine"))
    discard = page.get_by_role("button", name="Discard").first
    box = discard.bounding_box()
    assert box is not None and box["height"] < 60  # one line
    page.screenshot(path=str(tmp_path / "quarantine-390.png"), full_page=True)
    assert_clean(page)


@pytest.mark.parametrize("width", [1200, 390])
def test_an_announcement_is_written_picked_previewed_and_sent(browser: Browser, live: Live, width: int, tmp_path) -> None:  # noqa: F811, ANN001
    page = signed_in_page(browser, live, "sam@a.test", width=width)
    page.goto(live.url("/announcements"))
    page.get_by_label("Message").fill(f"Closed on Monday for the storm ({width})")
    find = page.get_by_label("Find families")
    find.fill("luna")  # the Garcias' dog
    find.press("Enter")  # finds: nothing is previewed or sent
    expect(page.get_by_role("radio", name="These families:")).to_be_checked()
    picks = page.get_by_role("group", name="Families to pick")
    expect(picks.get_by_role("checkbox")).to_have_count(1)
    picks.get_by_label("Garcia family").check()
    page.get_by_role("button", name="Preview", exact=True).click()
    preview = page.locator("#announcement-preview")
    expect(preview).to_contain_text("1 chosen family: 1 family, 1 parent with an email address.")
    expect(page.get_by_label("Message")).to_have_value(f"Closed on Monday for the storm ({width})")
    expect(page.get_by_text("No family matches")).to_have_count(0)  # the match is the one picked
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing off-screen sideways
    assert preview.locator("p").evaluate("p => p.scrollWidth <= p.clientWidth")  # the counts are not cut off
    page.screenshot(path=str(tmp_path / f"announcement-preview-{width}.png"), full_page=True)
    page.get_by_role("button", name="Send to 1 family").click()
    expect(page).to_have_url(re.compile(r"/announcements/\d+$"))
    expect(page.locator("#announcement-progress")).to_contain_text("of 1 family")
    expect(page.get_by_text(f"Closed on Monday for the storm ({width})")).to_be_visible()
    assert_clean(page)


def test_an_admins_thread_page_fits_a_phone(browser: Browser, live: Live, tmp_path) -> None:  # noqa: F811, ANN001
    """The header's actions (Mark as unread, Reply address…) wrap under the family's name
    instead of pushing the page sideways at 390 px."""
    page = signed_in_page(browser, live, "ada@a.test", width=390)
    page.goto(live.url(f"/threads/{live.world.thread.id}"))
    address = page.get_by_role("link", name="Reply address…")
    expect(address).to_be_in_viewport()
    box = address.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390  # whole, not cut at the edge
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing off-screen sideways
    page.screenshot(path=str(tmp_path / "thread-admin-390.png"))
    assert_clean(page)


def test_an_admins_header_is_one_row_on_a_laptop(browser: Browser, live: Live, tmp_path) -> None:  # noqa: F811, ANN001
    """Every tab an admin has, their name and Sign out fit one row at 1280 px (they wrapped,
    leaving Sign out alone on a second row)."""
    page = signed_in_page(browser, live, "ada@a.test", width=1280)
    page.screenshot(path=str(tmp_path / "header-admin-1280.png"))
    brand = page.locator(".topbar .brand").bounding_box()
    sign_out = page.get_by_role("button", name="Sign out").bounding_box()
    tabs = page.get_by_role("navigation", name="Main").bounding_box()
    assert brand is not None and sign_out is not None and tabs is not None
    assert sign_out["y"] < brand["y"] + brand["height"]  # on the brand's row
    assert tabs["height"] < 2 * brand["height"] + 16  # the tabs themselves on one row
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
